"""/tasks and /today render what the real MCP server returns: its tools called for real, on SQLite."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mcp import Client

from butler_bot.texts import TextBook, Texts
from butler_bot.views import agenda_view, tasks_view
from shared.settings import CONFIG_DIR
from tests.mcp_server.conftest import RunningServer, mcp_client

# Whichever of these is furthest from midnight: a reminder a minute away then falls due today.
ZONES = ("UTC", "Asia/Tokyo", "America/New_York")


@pytest.fixture
def texts() -> Texts:
    return TextBook(CONFIG_DIR / "butler_bot_texts.yaml").texts("en")


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The tool's structured result, as the bot's tool client hands it to the views."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error and isinstance(result.structured_content, dict), f"expected {tool} to answer: {result}"
    return result.structured_content


def zone_far_from_midnight() -> ZoneInfo:
    return min((ZoneInfo(name) for name in ZONES), key=lambda zone: abs(datetime.now(zone).hour + 0.5 - 12))


async def test_an_overdue_task_shows_as_overdue_in_tasks_and_today(
    mcp_server: RunningServer, user_id: int, texts: Texts
) -> None:
    zone = zone_far_from_midnight()
    yesterday = (datetime.now(zone) - timedelta(days=1)).replace(hour=9, minute=0)
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    async with mcp_client(mcp_server.mcp_url, user_id=user_id) as client:
        await call(client, "time_set_timezone", timezone=zone.key)
        await call(client, "tasks_add", title="Pay rent", due=yesterday.strftime("%Y-%m-%dT%H:%M"), priority="high")
        await call(client, "tasks_add", title="Buy milk", due=tomorrow.isoformat())
        await call(client, "reminders_create", text="Stretch", after_minutes=1)
        tasks = await call(client, "tasks_list")
        agenda = await call(client, "agenda_today")

    overdue_line = f"• Pay rent (due {yesterday:%Y-%m-%d} 09:00) ⚠️ overdue ❗"
    assert tasks_view(tasks, texts).splitlines() == [
        texts("tasks_header"),
        overdue_line,
        f"• Buy milk (due {tomorrow.isoformat()})",
    ], f"expected the past-due task marked overdue, from tasks_list's real result {tasks}"

    today = agenda_view(agenda, texts).splitlines()
    assert today[today.index(texts("today_overdue")) + 1] == overdue_line, f"expected it overdue in /today: {today}"
    reminder = next(line for line in today if line.endswith(" Stretch"))
    assert reminder.startswith("• ") and len(reminder.split()[1]) == len("HH:MM"), f"expected its time: {reminder!r}"


async def test_an_empty_list_and_an_empty_day_say_so(mcp_server: RunningServer, user_id: int, texts: Texts) -> None:
    async with mcp_client(mcp_server.mcp_url, user_id=user_id) as client:
        tasks = await call(client, "tasks_list")
        agenda = await call(client, "agenda_today")
    assert tasks_view(tasks, texts) == texts("tasks_empty")
    assert agenda_view(agenda, texts).splitlines()[-1] == texts("today_empty")

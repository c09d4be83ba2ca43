"""The morning briefing in-process: /briefing through the real dispatcher, and its delivery from the real MCP server.

No model anywhere: /briefing calls the tool straight, and the briefing is written from agenda_today.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from mcp_server.db import Database
from mcp_server.models import Reminder, ReminderSeries
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.test_bot import BotUnderTest, make_bot  # noqa: F401 (a fixture)
from tests.butler_bot.test_reminders import USER, Delivery, delivered, free_port, make_delivery
from tests.butler_bot.test_reminders import mcp_server as serve_mcp
from tests.mcp_server.conftest import TOKEN, RunningServer


async def test_briefing_is_shown_set_changed_and_stopped_without_the_model(
    make_bot: Callable[..., BotUnderTest],  # noqa: F811
    standin: StandIn,
    mcp_server: RunningServer,
) -> None:
    bot = make_bot()
    await bot.tool("time_set_timezone", timezone="Europe/Berlin")
    [state] = await bot.send(bot.owner, "/briefing")
    assert "is off" in state, f"expected the briefing off at first, saw {state!r}"

    [answer] = await bot.send(bot.owner, "/briefing 7:30")
    assert "every day at 07:30 (Europe/Berlin)" in answer, f"expected the new time in the user's zone, saw {answer!r}"
    [answer] = await bot.send(bot.owner, "/briefing 08:00")
    assert "every day at 08:00" in answer, f"expected the time changed, saw {answer!r}"
    [state] = await bot.send(bot.owner, "/briefing")
    assert "every day at 08:00" in state, f"expected the setting shown, saw {state!r}"
    assert len(await pending_briefings(mcp_server.database_url, bot.owner)) == 1, (
        "expected one briefing per user: the new time replaces the old"
    )

    [answer] = await bot.send(bot.owner, "/briefing off")
    assert "is off" in answer, f"expected the briefing stopped, saw {answer!r}"
    assert await pending_briefings(mcp_server.database_url, bot.owner) == [], "expected no briefing left to send"
    assert standin.log == [], f"expected no model request, saw {len(standin.log)}"


async def test_plain_words_set_the_briefing_through_the_agenda_tool(
    make_bot: Callable[..., BotUnderTest],  # noqa: F811
    standin: StandIn,
) -> None:
    call = {"name": "agenda_today", "arguments": {"daily_at": "08:00"}}
    standin.script({"when": "every morning", "replies": [{"tool_calls": [call]}, {"content": "Done: every day at 8."}]})
    bot = make_bot()
    assert await bot.send(bot.owner, "send me my agenda every morning at 8") == ["Done: every day at 8."]
    [tool_result] = [m["content"] for m in standin.log[-1]["messages"] if m["role"] == "tool"]
    assert '"daily_at": "08:00"' in tool_result, f"expected the model to read the new setting back: {tool_result}"
    [state] = await bot.send(bot.owner, "/briefing")
    assert "every day at 08:00" in state, f"expected /briefing to show what the model set, saw {state!r}"


async def test_a_time_that_does_not_parse_gets_a_clear_reply_and_no_tool_call(
    make_bot: Callable[..., BotUnderTest],  # noqa: F811
) -> None:
    bot = make_bot()
    for wrong in ("25:00", "tomorrow", "8:61"):
        [answer] = await bot.send(bot.owner, f"/briefing {wrong}")
        assert f'"{wrong}"' in answer and "/briefing 08:00" in answer, (
            f"expected a reply naming {wrong!r} and showing the right form, saw {answer!r}"
        )
    assert bot.mcp.users == [], "expected no tool call for a time that does not parse"


async def pending_briefings(database_url: str, user_id: int) -> list[Reminder]:
    """The user's briefing occurrences still to be sent, straight from the server's database."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            query = (
                select(Reminder)
                .join(ReminderSeries, Reminder.series_id == ReminderSeries.id)
                .where(Reminder.user_id == user_id, Reminder.status == "pending", ReminderSeries.kind == "briefing")
            )
            return list((await session.scalars(query)).all())
    finally:
        await database.close()


async def briefing_due_now(delivery: Delivery, at: str = "08:00") -> int:
    """Turn the briefing on for USER, then bring its first occurrence forward to now, as time passing would."""
    tools = (await delivery.loop.backends.conversations()).tools
    result = await tools.call(USER, "agenda_today", {"daily_at": at})
    assert not result.is_error, f"expected agenda_today to set the briefing, saw {result.text}"
    [occurrence] = await pending_briefings(delivery.server.database_url, USER)
    await delivery.change(occurrence.id, due_at=datetime.now(UTC) - timedelta(seconds=1))
    return occurrence.id


@pytest.fixture
def settings_for(make_settings: Callable[..., BotSettings]) -> Callable[[RunningServer], BotSettings]:
    return lambda server: make_settings(mcp_url=server.mcp_url, mcp_auth_token=TOKEN, reminder_poll_seconds=0.05)


@asynccontextmanager
async def delivering(
    database: Path, port: int, settings: BotSettings, store: BotStore, **server: Any
) -> AsyncIterator[Delivery]:
    """Reminder delivery from a real MCP server on `database` and `port`, with its tool client closed after."""
    with serve_mcp(database, port, **server) as running:
        loop, session = make_delivery(settings.model_copy(update={"mcp_url": running.mcp_url}), store)
        try:
            yield Delivery(running, session, store, loop)
        finally:
            await loop.backends.close()


@pytest.fixture
async def briefing_delivery(
    tmp_path: Path, settings_for: Callable[[RunningServer], BotSettings]
) -> AsyncIterator[Delivery]:
    port = free_port()
    settings = settings_for(RunningServer(f"http://127.0.0.1:{port}", ""))
    store = BotStore.open(settings.store_path, settings.history_turns)
    store.set_language(USER, "en")
    async with delivering(tmp_path / "butler.db", port, settings, store) as delivery:
        yield delivery
    store.close()


async def test_a_briefing_due_now_arrives_as_the_days_agenda_without_the_model(briefing_delivery: Delivery) -> None:
    delivery = briefing_delivery
    tools = (await delivery.loop.backends.conversations()).tools
    await tools.call(USER, "tasks_add", {"title": "buy milk", "due": datetime.now(UTC).date().isoformat()})
    await tools.call(USER, "reminders_create", {"text": "call mum", "after_minutes": 1})
    occurrence = await briefing_due_now(delivery)
    await delivery.run_until(delivered(delivery, occurrence))

    [sent] = delivery.session.texts(USER)
    texts = delivery.loop.textbook.texts("en")
    assert sent.startswith(texts("briefing_header")) and "buy milk" in sent and "call mum" in sent, (
        f"expected the agenda under the briefing header with the task and the reminder, saw {sent!r}"
    )
    assert "Daily agenda" not in sent, f"expected the briefing not listed in itself, saw {sent!r}"
    assert (await delivery.statuses())[occurrence] == "delivered"
    [following] = await pending_briefings(delivery.server.database_url, USER)
    assert following.due_at > datetime.now(UTC), f"expected the next briefing scheduled, saw {following.due_at}"


async def test_a_briefing_whose_agenda_cannot_be_read_is_retried_like_any_reminder(
    tmp_path: Path, settings_for: Callable[[RunningServer], BotSettings], caplog: pytest.LogCaptureFixture
) -> None:
    port, database = free_port(), tmp_path / "butler.db"
    settings = settings_for(RunningServer(f"http://127.0.0.1:{port}", ""))
    store = BotStore.open(settings.store_path, settings.history_turns)
    store.set_language(USER, "en")
    async with delivering(database, port, settings, store) as delivery:
        occurrence = await briefing_due_now(delivery)
    # The same server with its agenda tool off: the claim works, the agenda cannot be read.
    async with delivering(database, port, settings, store, enabled_tools=("tasks", "reminders", "time")) as delivery:
        with caplog.at_level(logging.WARNING, logger="butler_bot.reminders"):
            await delivery.run_until(lambda: "cannot read the agenda" in caplog.text)
        row = (await delivery.rows())[occurrence]
        assert delivery.session.texts(USER) == [], f"expected nothing sent yet: {delivery.session.texts(USER)}"
        assert row.status == "pending" and store.delivery(row.delivery_key) is None, (
            f"expected the briefing put off for a retry, not given up on; saw {row.status}"
        )
    async with delivering(database, port, settings, store) as delivery:
        await delivery.change(occurrence, lease_until=None)  # as the end of its retry wait would
        await delivery.run_until(delivered(delivery, occurrence))
        [sent] = delivery.session.texts(USER)
        assert sent.startswith(delivery.loop.textbook.texts("en")("briefing_header")), f"expected it sent: {sent!r}"
        assert (await delivery.statuses())[occurrence] == "delivered"
    store.close()

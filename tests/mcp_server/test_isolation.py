"""Per-user isolation: a user reaches only their own rows, whatever ids the arguments name."""

from collections.abc import Callable

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import INVALID_REQUEST

from tests.mcp_server.conftest import TOKEN, RunningServer, UserFactory, mcp_client


async def test_a_user_cannot_see_or_touch_another_users_rows(as_user: UserFactory) -> None:
    async with as_user() as alice, as_user() as bob:
        task = await alice.call("tasks_add", title="Alice's secret task")
        note = await alice.call("notes_save", text="Alice's diary")
        reminder = await alice.call("reminders_create", text="Alice's reminder", after_minutes=30)
        await alice.call("time_set_timezone", timezone="Europe/Paris")

        assert (await bob.call("tasks_list", show="all"))["tasks"] == []
        assert (await bob.call("notes_search", query="diary"))["notes"] == []
        assert (await bob.call("reminders_list"))["reminders"] == []
        assert (await bob.call("agenda_today"))["reminders"] == []
        assert (await bob.call("time_now"))["timezone"] == "UTC", "expected Alice's timezone to stay hers"

        # Naming Alice's ids reads exactly like naming ids that do not exist.
        refusals = [
            await bob.fails("tasks_complete", task_id=task["id"]),
            await bob.fails("tasks_update", task_id=task["id"], title="pwned"),
            await bob.fails("tasks_delete", task_id=task["id"]),
            await bob.fails("notes_save", note_id=note["id"], text="pwned"),
            await bob.fails("notes_delete", note_id=note["id"]),
            await bob.fails("reminders_cancel", reminder_id=reminder["id"]),
        ]
        assert all("No " in text and "for this user" in text for text in refusals), refusals

        assert (await alice.call("tasks_list"))["tasks"] == [task], "expected Alice's task unchanged"
        assert [n["text"] for n in (await alice.call("notes_search"))["notes"]] == ["Alice's diary"]
        assert [r["status"] for r in (await alice.call("reminders_list"))["reminders"]] == ["pending"]


async def test_the_user_is_read_from_each_request(server: RunningServer, new_user_id: Callable[[], int]) -> None:
    """One MCP connection whose header changes between calls acts for whoever the current call names."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Telegram-User-Id": str(new_user_id())}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(server.mcp_url, http_client=http)) as client,
    ):
        await client.call_tool("tasks_add", {"title": "for the first user"})
        http.headers["X-Telegram-User-Id"] = str(new_user_id())
        seen = await client.call_tool("tasks_list", {})
    assert seen.structured_content == {"tasks": [], "more": False, "timezone": "UTC"}, seen


@pytest.mark.parametrize("header", [None, "", "abc", "0", "-5", "+5", "5 6", "1.5", "0x10", str(2**63)])
async def test_a_call_without_a_valid_user_is_refused(server: RunningServer, header: str | None) -> None:
    extra = {} if header is None else {"X-Telegram-User-Id": header}
    async with mcp_client(server.mcp_url, **extra) as client:
        # Listing the tools needs no user: an MCP client can connect and look before anyone talks.
        assert "tasks_list" in {tool.name for tool in (await client.list_tools()).tools}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("tasks_list", {})
    assert refused.value.code == INVALID_REQUEST, refused.value
    assert "X-Telegram-User-Id" in refused.value.message, refused.value.message

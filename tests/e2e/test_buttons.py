"""Snooze then Done from a reminder's buttons, through the whole stack: emulator, bot, MCP server on SQLite."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.mcp import call, in_seconds, mcp_client
from tests.e2e.stack import Stack, wait_until
from tests.e2e.telegram_user import TelegramUser, chat_user

pytestmark = pytest.mark.e2e

USER_ID = 5126
# The user's reminders as the MCP server keeps them, read in its container.
ROWS = (
    "import json, sqlite3; db = sqlite3.connect('/data/butler.db'); print(json.dumps(db.execute("
    "'SELECT id, status, due_at, delivery_key FROM reminders WHERE user_id = ? ORDER BY id', (int(__import__('sys')"
    ".argv[1]),)).fetchall()))"
)
# Makes one reminder due now, so the snoozed one comes back without a 10-minute wait.
DUE_NOW = (
    "import sqlite3, sys, datetime; db = sqlite3.connect('/data/butler.db'); "
    "now = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M:%S.%f'); "
    "db.execute('UPDATE reminders SET due_at = ? WHERE id = ?', (now, int(sys.argv[1]))); db.commit()"
)


def rows(stack: Stack) -> list[list[Any]]:
    return json.loads(stack.docker_exec("mcp-server", "python", "-c", ROWS, str(USER_ID)))


def next_message(person: TelegramUser) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    wait_until(lambda: found.extend(person.new_messages()) or found, 30, "the reminder in the chat")
    assert len(found) == 1, f"expected one message, saw {found}"
    return found[0]


def buttons(message: dict[str, Any]) -> list[str]:
    return [button["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for button in row]


async def set_reminder(stack: Stack) -> int:
    async with mcp_client(stack, USER_ID) as client:
        return (await call(client, "reminders_create", text="take the cake out", at=in_seconds(2)))["id"]


@pytest.mark.parametrize("stack", ["compose-v2"], indirect=True)
def test_snooze_then_done_from_the_buttons(stack: Stack) -> None:
    person = chat_user(stack, USER_ID)
    person.new_messages()
    started = time.monotonic()
    reminder_id = asyncio.run(set_reminder(stack))

    first = next_message(person)
    assert "take the cake out" in first["text"], first
    assert buttons(first) == ["✅ Done", "+10 min", "+1 h", "Tomorrow"], f"expected the four buttons, saw {first}"
    [[_, _, _, first_key]] = rows(stack)

    pressed_at = datetime.now(UTC)
    answer = person.press("+10 min", first["message_id"])
    assert answer.startswith("💤 Snoozed until"), f"expected the snooze answered, saw {answer!r}"
    [[row_id, status, due_at, key]] = rows(stack)
    due = datetime.fromisoformat(due_at).replace(tzinfo=UTC)
    assert (row_id, status) == (reminder_id, "pending") and key != first_key, (
        f"expected reminder {reminder_id} pending again under a new key, saw {rows(stack)}"
    )
    assert pressed_at + timedelta(minutes=9) < due < pressed_at + timedelta(minutes=11), (
        f"expected it due about 10 min after the press at {pressed_at:%H:%M:%S}, saw {due:%H:%M:%S}"
    )
    assert buttons(person.message(first["message_id"])) == [], "expected the snoozed message to lose its buttons"

    stack.docker_exec("mcp-server", "python", "-c", DUE_NOW, str(reminder_id))
    again = next_message(person)
    assert "take the cake out" in again["text"] and buttons(again) == buttons(first), again
    assert person.press("✅ Done", again["message_id"]) == "✅ Done."
    assert [(row[0], row[1]) for row in rows(stack)] == [(reminder_id, "done")], rows(stack)
    assert buttons(person.message(again["message_id"])) == [], "expected Done to take the buttons away"
    print(f"snooze then Done through the stack: {time.monotonic() - started:.1f} s")

"""A weekday series end to end: set through the model's tool call, delivered by the real bot, and its next
occurrence at 09:00 local on the other side of a DST change (Europe/Berlin, Sunday 2035-03-25: a year well
ahead, so the dates stay in the future for as long as the test lives)."""

import json
from datetime import UTC, datetime

import pytest

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.stack import Stack, wait_until
from tests.e2e.telegram_user import chat_user

pytestmark = pytest.mark.e2e

USER = 5111
WEEKDAYS_AT_9 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0"
# Brings the user's pending occurrence forward to now in the MCP server's SQLite, as the clock reaching
# Friday 09:00 would; the rule's own time for it (reminders.occurrence) stays.
DUE_NOW = """
import sqlite3, sys
db = sqlite3.connect('/data/butler.db')
moved = db.execute(
    "UPDATE reminders SET due_at = ? WHERE user_id = ? AND status = 'pending' AND series_id IS NOT NULL",
    (sys.argv[1], int(sys.argv[2])),
).rowcount
db.commit()
print(moved)
"""
PENDING = """
import json, sqlite3, sys
db = sqlite3.connect('/data/butler.db')
rows = db.execute("SELECT due_at FROM reminders WHERE user_id = ? AND status = 'pending'", (int(sys.argv[1]),))
print(json.dumps([due for (due,) in rows]))
"""


def tool_results(llm: LlmStandIn, tool: str) -> list[str]:
    """What the MCP server answered the model's calls of `tool`, as the bot passed it back."""
    # Each answer once, though later requests may carry it again in their history.
    return list(
        dict.fromkeys(
            message["content"]
            for entry in llm.log()
            for message in entry["messages"]
            if message["role"] == "tool" and message.get("name") == tool
        )
    )


@pytest.mark.parametrize("stack", ["compose-v2"], indirect=True)
def test_a_weekday_series_keeps_09_00_local_across_the_dst_change(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, USER)
    llm.script(
        {
            "when": "every weekday",
            "replies": [
                {"tool_calls": [{"name": "time_set_timezone", "arguments": {"timezone": "Europe/Berlin"}}]},
                {
                    "tool_calls": [
                        {
                            "name": "reminders_create",
                            "arguments": {"text": "stand-up", "at": "2035-03-23T00:00", "every": WEEKDAYS_AT_9},
                        }
                    ]
                },
                {"content": "I will remind you every weekday at 9."},
            ],
        },
        {
            "when": "my reminders",
            "replies": [{"tool_calls": [{"name": "reminders_list", "arguments": {}}]}, {"content": "Here they are."}],
        },
    )
    assert person.ask("remind me every weekday at 9 to do the stand-up") == ["I will remind you every weekday at 9."]
    [created] = [json.loads(result) for result in tool_results(llm, "reminders_create")]
    assert (created["due"], created["every"]) == ("2035-03-23T09:00:00+01:00", WEEKDAYS_AT_9), (
        f"expected the first occurrence on Friday 09:00 CET; the server answered {created}"
    )

    # SQLite holds naive UTC text, the way SQLAlchemy writes it.
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    moved = stack.docker_exec("mcp-server", "python", "-c", DUE_NOW, now, str(USER)).strip()
    assert moved == "1", f"expected the one pending occurrence moved to now; moved {moved}"
    arrived = wait_until(person.new_replies, 30, "the stand-up reminder from the bot")
    assert arrived == ["⏰ Reminder: stand-up"], f"expected the occurrence delivered once; saw {arrived}"

    # The next occurrence is made with the bot's ack: Monday after the change, 09:00 CEST is 07:00 UTC.
    def next_pending() -> list[str] | None:
        pending = json.loads(stack.docker_exec("mcp-server", "python", "-c", PENDING, str(USER)))
        return pending if pending and pending[0][:10] != now[:10] else None

    pending = wait_until(next_pending, 30, "the next occurrence after the ack")
    assert [due[:19] for due in pending] == ["2035-03-26 07:00:00"], f"expected Monday 07:00 UTC; saw {pending}"
    assert person.ask("what are my reminders?") == ["Here they are."]
    [listed] = [json.loads(result) for result in tool_results(llm, "reminders_list")]
    shown = [(r["due"], r["every"], r["series_id"]) for r in listed["reminders"]]
    assert shown == [("2035-03-26T09:00:00+02:00", WEEKDAYS_AT_9, created["series_id"])], (
        f"expected the series' next occurrence at 09:00 CEST; the model was told {listed}"
    )

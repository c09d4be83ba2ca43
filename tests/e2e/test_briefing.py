"""The morning briefing end to end: set with /briefing, it arrives at its time with the day's agenda, no model."""

import time
from datetime import UTC, datetime

import pytest

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.stack import Stack
from tests.e2e.telegram_user import chat_user

pytestmark = pytest.mark.e2e

USER = 5125
# Brings the user's briefing forward to now in the MCP server's SQLite, as the clock reaching 08:00 would.
DUE_NOW = """
import sqlite3, sys
db = sqlite3.connect('/data/butler.db')
briefings = "SELECT id FROM reminder_series WHERE kind = 'briefing' AND status = 'active' AND user_id = ?"
moved = db.execute(
    f"UPDATE reminders SET due_at = ? WHERE status = 'pending' AND series_id IN ({briefings})",
    (sys.argv[1], int(sys.argv[2])),
).rowcount
db.commit()
print(moved)
"""


@pytest.mark.parametrize("stack", ["compose-v2"], indirect=True)
def test_a_briefing_arrives_at_its_time_with_the_days_tasks_and_no_model_request(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, USER)
    today = datetime.now(UTC).date().isoformat()
    llm.script(
        {
            "when": "pay rent",
            "replies": [
                {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "pay rent", "due": today}}]},
                {"content": "Added."},
            ],
        }
    )
    assert person.ask("add pay rent, due today") == ["Added."]
    asked = len(llm.log())

    [answer] = person.ask("/briefing 08:00")
    assert "every day at 08:00" in answer, f"expected the briefing set for 08:00; saw {answer!r}"
    # SQLite holds naive UTC text, the way SQLAlchemy writes it.
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    moved = stack.docker_exec("mcp-server", "python", "-c", DUE_NOW, now, str(USER)).strip()
    assert moved == "1", f"expected one briefing occurrence moved to now; moved {moved}"

    deadline = time.monotonic() + 30
    arrived: list[str] = []
    while not arrived and time.monotonic() < deadline:
        arrived = person.new_replies()
        time.sleep(0.2)
    assert len(arrived) == 1 and arrived[0].startswith("📋") and "• pay rent" in arrived[0], (
        f"expected the day's agenda with the task added before; saw {arrived}"
    )
    assert len(llm.log()) == asked, f"expected no model request for /briefing or the briefing; saw {llm.log()[asked:]}"

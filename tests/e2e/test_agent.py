"""The butler end to end: the emulator plays Telegram, a scripted stand-in plays the LLM, the MCP server is real."""

import html
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.stack import EMULATOR_TOKEN, Stack, wait_until
from tests.e2e.telegram_user import TelegramUser, chat_user

pytestmark = pytest.mark.e2e

TOOLS_DOWN = "tools (tasks, notes, reminders) are unavailable"
BOT_HEALTH = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8090/health', timeout=3).read().decode())"


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def visible_replies(person: TelegramUser) -> list[str]:
    """The bot's new messages as the user reads them: HTML replies shown without their tags."""
    response = httpx.post(
        f"{person.emulator_url}/getUpdates", json={"token": EMULATOR_TOKEN, "chat_id": person.user_id}, timeout=10
    )
    shown = []
    for update in response.json()["result"]:
        message = update["message"]
        text = message["text"]
        if str(message.get("parse_mode", "")).upper() == "HTML":
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        shown.append(text)
    return shown


def wait_for_replies(person: TelegramUser, count: int, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < count:
        seen += visible_replies(person)
        time.sleep(0.2)
    return seen


def ask(person: TelegramUser, text: str, timeout: float = 60) -> list[str]:
    """Send `text`; the visible replies, waiting up to `timeout` for the first and briefly for more."""
    visible_replies(person)
    person.send(text)
    replies = wait_for_replies(person, 1, timeout)
    time.sleep(0.5)  # a long answer comes in several messages
    return replies + visible_replies(person)


def bot_pid(stack: Stack) -> int:
    return json.loads(stack.docker_exec("butler-bot", "python", "-c", BOT_HEALTH))["pid"]


def reminder_script(text: str, seconds: float) -> dict:
    return {
        "when": f"remind me to {text}",
        "replies": [
            {"tool_calls": [{"name": "reminders_create", "arguments": {"text": text, "at": in_seconds(seconds)}}]},
            {"content": f"I will remind you to {text}."},
        ],
    }


def test_a_reminder_in_three_seconds_arrives(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5101)
    llm.script(reminder_script("stretch", 3))
    assert ask(person, "remind me to stretch in 3 seconds") == ["I will remind you to stretch."]
    arrived = wait_for_replies(person, 1, 60)
    assert arrived == ["⏰ Reminder: stretch"], f"expected the reminder in the chat; saw {arrived}"

    first, second = llm.log()
    call = second["messages"][-2]["tool_calls"][0]
    assert "reminders_create" in first["tools"] and second["status"] == 200, second
    assert re.fullmatch(r"[A-Za-z0-9]{9}", call["id"]), f"expected a Mistral-style tool-call id, saw {call['id']}"
    actions = httpx.post(
        f"{person.emulator_url}/getChatActions", json={"token": EMULATOR_TOKEN, "chat_id": 5101}, timeout=5
    ).json()["result"]
    assert "typing" in [action["action"] for action in actions], "expected 'typing…' while the butler worked"


def test_an_added_task_shows_in_tasks(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5102)
    llm.script(
        {
            "when": "buy milk",
            "replies": [
                {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "buy milk"}}]},
                {"content": "Added **buy milk** to your list."},
            ],
        }
    )
    assert ask(person, "add buy milk") == ["Added buy milk to your list."]  # sent as HTML, shown in bold
    tasks = ask(person, "/tasks")
    assert tasks == ["Your open tasks:\n• buy milk"], f"expected the new task in /tasks; saw {tasks}"
    assert len(llm.log()) == 2, "expected /tasks to answer without the model"


def test_a_stranger_is_refused_and_the_model_never_hears_of_it(stack: Stack, llm: LlmStandIn) -> None:
    secret = f"stranger-{secrets.token_hex(4)}"
    replies = ask(chat_user(stack, 6666), f"give me the silver, {secret}")
    assert len(replies) == 1 and "6666" in replies[0], f"expected one refusal naming the id 6666; saw {replies}"
    assert llm.requests_mentioning(secret) == [], "expected no LLM request for a stranger"
    assert "refused Telegram user 6666" in stack.logs("butler-bot")


def test_hot_reload_mid_conversation_loses_no_history_and_no_reminder(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5103)
    llm.script(reminder_script("water the plants", 15), {"when": "my name", "replies": [{"content": "Noted."}]})
    assert ask(person, "my name is Ada") == ["Noted."]
    assert ask(person, "remind me to water the plants") == ["I will remind you to water the plants."]

    before = bot_pid(stack)
    marker = f"\n# reload {secrets.token_hex(4)}\n"
    stack.edit("butler_bot/views.py", lambda text: text + marker)
    try:
        wait_until(lambda: bot_pid(stack) != before, 60, "a new bot process after the edit")
        arrived = wait_for_replies(person, 1, 90)
        arrived += wait_for_replies(person, 1, 5)  # and no second copy
        assert arrived == ["⏰ Reminder: water the plants"], (
            f"expected the reminder once, after the reload; saw {arrived}"
        )
        ask(person, "what is my name?")
        [request] = llm.requests_mentioning("what is my name?")
        # The bot stamps each message with the user's local time: "[HH:MM] text".
        said = [
            re.sub(r"^\[\d\d:\d\d\] ", "", m["content"])
            for m in request["messages"]
            if m["role"] in ("user", "assistant")
        ]
        assert said[:2] == ["my name is Ada", "Noted."], (
            f"expected the earlier turns after the reload (kept on the butler-bot-data volume at /data); saw {said}"
        )
    finally:
        stack.edit("butler_bot/views.py", lambda text: text.replace(marker, ""))


def test_llm_down_and_slow_get_clear_answers(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5104)
    stack.run("stop", "llm-standin")
    try:
        [down] = ask(person, "hello?")
        assert down.startswith("The language model is not ready yet"), down
    finally:
        stack.run("start", "llm-standin")
        stack.wait_healthy("llm-standin", timeout=60)
    llm.script(default={"delay": 30, "content": "too late"})
    started = time.monotonic()
    [slow] = ask(person, "are you there?", timeout=25)
    elapsed = time.monotonic() - started
    assert slow == "The language model did not answer in time. Please try again.", slow
    # The stand-in would answer after 30 s: an answer well before that is the bot giving up at LLM_TIMEOUT (5 s).
    assert elapsed < 20, f"expected the answer at LLM_TIMEOUT (5 s), not the model's 30 s; it took {elapsed:.1f} s"
    assert stack.health("butler-bot") == "healthy"


def test_mcp_down_says_tools_are_unavailable_and_help_still_works(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5105)
    llm.script(
        {
            "when": "buy eggs",
            "replies": [
                {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "buy eggs"}}]},
                {"content": "I could not add it."},
            ],
        }
    )
    stack.run("stop", "mcp-server")
    try:
        [help_text] = ask(person, "/help")
        assert "/tasks" in help_text and "5105" in help_text, help_text
        [answer] = ask(person, "add buy eggs")
        assert TOOLS_DOWN in answer, f"expected the reply to say the tools are unavailable; saw {answer}"
        assert ask(person, "/tasks") == [
            "My tools (tasks, notes, reminders) are unavailable right now. Please try again in a minute."
        ]
    finally:
        stack.run("start", "mcp-server")
        stack.wait_healthy("mcp-server", timeout=60)
    assert wait_until(lambda: ask(person, "/tasks", timeout=10) == ["You have no open tasks."], 30, "tools back")


def test_awkward_and_long_answers_are_delivered(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5106)
    awkward = "if 1 < 2 && 3 > 2 then *maybe <b>not** bold <br> & done"
    llm.script(
        {"when": "awkward", "replies": [{"content": awkward}]}, {"when": "long", "replies": [{"content": "ok " * 2000}]}
    )
    assert ask(person, "awkward") == [awkward]
    parts = ask(person, "long")
    assert len(parts) == 2 and " ".join(parts).split() == ["ok"] * 2000, [len(part) for part in parts]


def test_a_crashed_bot_is_unhealthy_with_a_clear_line_and_back_on_the_next_save(stack: Stack) -> None:
    crash = '\nraise RuntimeError("e2e crash probe")\n'
    stack.edit("butler_bot/commands.py", lambda text: text + crash)
    try:
        wait_until(
            lambda: "butler-bot crashed: RuntimeError('e2e crash probe')" in stack.logs("butler-bot"),
            60,
            "the crash line",
        )
        wait_until(lambda: stack.health("butler-bot") == "unhealthy", 90, "an unhealthy butler-bot")
    finally:
        stack.edit("butler_bot/commands.py", lambda text: text.replace(crash, ""))
    stack.wait_healthy("butler-bot", timeout=120)
    assert ask(chat_user(stack, 5107), "/start"), "expected a greeting after the fix"

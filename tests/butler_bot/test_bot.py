"""The whole bot in-process: updates go through the real dispatcher, middlewares and handlers.

Telegram is a recording session, the model is the scripted stand-in over HTTP, the tools are the real MCP server.
"""

import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import SendMessage

from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.conversation import Conversations
from butler_bot.core import ToolResult
from butler_bot.llm import LlmClient
from butler_bot.prompt import SystemPrompt
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook, WatchedFile
from butler_bot.tools import McpTools
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import PrebuiltBackends, RecordingSession, recording_bot, release_routers, text_update
from tests.mcp_server.conftest import TOKEN, RunningServer

STRANGER = 666


class WatchedTools(McpTools):
    """The real MCP client, noting for whom each call went out."""

    def __init__(self, settings: BotSettings) -> None:
        super().__init__(settings)
        self.users: list[int] = []

    async def call(self, user_id: int, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.users.append(user_id)
        return await super().call(user_id, name, arguments)

    async def list_tools(self, user_id: int) -> list[Any]:
        self.users.append(user_id)
        return await super().list_tools(user_id)


@dataclass
class BotUnderTest:
    owner: int
    bot: Bot
    session: RecordingSession
    dp: Dispatcher
    mcp: WatchedTools
    store: BotStore
    backends: Backends

    async def send(self, user_id: int, text: str, **kwargs: Any) -> list[str]:
        """Deliver one update and return the texts the bot sent in answer."""
        before = len(self.session.sent())
        await self.dp.feed_update(self.bot, text_update(user_id, text, **kwargs))
        return [call.text for call in self.session.sent()[before:]]

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool on the real server as the owner, the way a test sets the scene."""
        result = await self.mcp.call(self.owner, name, arguments)
        assert not result.is_error and result.data is not None, result.text
        return result.data


@pytest.fixture
async def make_bot(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_server: RunningServer, user_id: int
) -> AsyncIterator[Callable[..., BotUnderTest]]:
    made: list[BotUnderTest] = []

    def build(**overrides: Any) -> BotUnderTest:
        defaults = {
            "llm_base_url": standin.url,
            "mcp_url": mcp_server.mcp_url,
            "mcp_auth_token": TOKEN,
            "allowed_user_ids": (user_id,),
        }
        settings = make_settings(**(defaults | overrides))
        store = BotStore.open(settings.store_path, settings.history_turns)
        mcp = WatchedTools(settings)
        prompt = SystemPrompt(WatchedFile(settings.system_prompt_file))
        conversations = Conversations(settings, store, prompt, LlmClient(settings), mcp)
        backends = PrebuiltBackends(settings, store, conversations)
        bot, session = recording_bot()
        release_routers()
        dp = build_dispatcher(settings, store, TextBook(settings.texts_file), backends)
        made.append(BotUnderTest(user_id, bot, session, dp, mcp, store, backends))
        return made[-1]

    yield build
    for bot in made:
        await bot.mcp.close()
        bot.store.close()


async def test_a_stranger_is_refused_with_their_id_and_nothing_else_runs(
    make_bot: Callable[..., BotUnderTest], standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    replies = await bot.send(STRANGER, "remind me to steal the silver")
    assert len(replies) == 1 and str(STRANGER) in replies[0], f"expected one refusal naming the id, saw {replies}"
    assert standin.log == [], "expected no LLM request for a stranger"
    assert bot.mcp.users == [], "expected no tool call for a stranger"
    assert f"add {STRANGER}" in caplog.text, "expected the log to say how to let the user in"
    assert await bot.send(STRANGER, "again") == [], "expected one refusal per cool-down, not one per message"


async def test_the_owner_gets_the_model_answer(make_bot: Callable[..., BotUnderTest], standin: StandIn) -> None:
    bot = make_bot()
    [answer] = await bot.send(bot.owner, "good morning")
    assert answer.startswith("echo: [") and answer.endswith("] good morning"), answer
    assert set(bot.mcp.users) == {bot.owner}, "expected every tool call made as the user who wrote"


async def test_a_tool_the_model_calls_acts_for_the_user_who_wrote(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    standin.script(
        {
            "when": "milk",
            "replies": [
                {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "buy milk"}}]},
                {"content": "Added."},
            ],
        }
    )
    bot = make_bot()
    assert await bot.send(bot.owner, "add buy milk") == ["Added."]
    titles = [task["title"] for task in (await bot.tool("tasks_list"))["tasks"]]
    assert titles == ["buy milk"], f"expected the owner's list to hold the new task, saw {titles}"


async def test_texts_follow_the_telegram_language(make_bot: Callable[..., BotUnderTest]) -> None:
    bot = make_bot()
    [russian] = await bot.send(bot.owner, "/help", language="ru")
    [english] = await bot.send(bot.owner, "/help", language="en-GB")
    assert "Просто пишите мне" in russian and str(bot.owner) in russian, russian
    assert "Just write to me" in english, english


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


async def test_tools_down_help_still_works_and_the_reply_says_so(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot(mcp_url=closed_port_url())
    [help_text] = await bot.send(bot.owner, "/help")
    assert "/tasks" in help_text
    [answer] = await bot.send(bot.owner, "add buy milk")
    assert "tools (tasks, notes, reminders) are unavailable" in answer, answer
    assert await bot.send(bot.owner, "/tasks") == [
        "My tools (tasks, notes, reminders) are unavailable right now. Please try again in a minute."
    ]


async def test_model_down_gets_a_clear_answer_and_leaves_no_history(make_bot: Callable[..., BotUnderTest]) -> None:
    bot = make_bot(llm_base_url="http://127.0.0.1:9/v1")
    [answer] = await bot.send(bot.owner, "hello")
    assert answer.startswith("The language model is not ready yet"), answer
    assert bot.store.turns(bot.owner) == [], "expected the bot's own fixed text kept out of the history"


async def test_history_is_kept_across_restarts_and_reset_clears_it(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    first = make_bot()
    await first.send(first.owner, "my name is Ada")
    first.store.close()
    restarted = make_bot()
    await restarted.send(restarted.owner, "what is my name?")
    remembered = [m["content"] for m in standin.log[-1]["messages"][1:]]
    assert [text.split("] ", 1)[-1] for text in remembered] == [
        "my name is Ada",
        "my name is Ada",
        "what is my name?",
    ], remembered

    assert await restarted.send(restarted.owner, "/reset") == [
        "Done: I forgot our conversation. Your tasks, notes and reminders are still there."
    ]
    await restarted.send(restarted.owner, "who am I?")
    assert [m["role"] for m in standin.log[-1]["messages"]] == ["system", "user"]


async def test_the_prompt_has_the_users_date_timezone_and_local_time(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot()
    await bot.tool("time_set_timezone", timezone="Asia/Tokyo")
    await bot.send(bot.owner, "hi")
    system, user = standin.log[-1]["messages"][0]["content"], standin.log[-1]["messages"][-1]["content"]
    assert "Asia/Tokyo" in system and "$date" not in system and "$timezone" not in system, system
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    expected = {f"[{moment:%H:%M}] hi" for moment in (tokyo - timedelta(minutes=1), tokyo)}
    assert user in expected, f"expected the message stamped with Tokyo time, one of {expected}; saw {user!r}"


async def test_awkward_and_long_replies_are_delivered(make_bot: Callable[..., BotUnderTest], standin: StandIn) -> None:
    awkward = "if 1 < 2 && 3 > 2 then *maybe <b>not** bold <br> & done"
    standin.script(
        {"when": "awkward", "replies": [{"content": awkward}]},
        {"when": "long", "replies": [{"content": "word " * 1500}]},
    )
    bot = make_bot(llm_max_tokens=4000)
    [delivered] = await bot.send(bot.owner, "awkward")
    call = bot.session.sent(bot.owner)[-1]
    assert call.parse_mode == "HTML" and "&lt;br&gt;" in delivered and "&amp;&amp;" in delivered, delivered
    parts = await bot.send(bot.owner, "long")
    assert len(parts) == 2 and all(len(part) <= 4096 for part in parts), [len(part) for part in parts]
    assert " ".join(parts).split() == ["word"] * 1500


async def test_an_unexpected_error_is_logged_and_answered(
    make_bot: Callable[..., BotUnderTest], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database melted")

    bot.mcp.call = broken  # type: ignore[method-assign]
    replies = await bot.send(bot.owner, "/tasks")
    assert replies == ["Sorry, something went wrong on my side. The error is logged; please try again."]
    assert "the database melted" in caplog.text


async def test_tools_lists_what_the_butler_can_do(make_bot: Callable[..., BotUnderTest]) -> None:
    bot = make_bot()
    [tools] = await bot.send(bot.owner, "/tools")
    lines = tools.splitlines()
    assert lines[0] == "What I can do:" and any(line.startswith("• tasks_add: ") for line in lines), lines


async def test_a_template_that_cannot_call_tools_is_said_once_and_no_tools_are_sent(
    make_bot: Callable[..., BotUnderTest], standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    standin.script(tools_template=False)
    bot = make_bot()
    [first] = await bot.send(bot.owner, "add buy milk")
    [second] = await bot.send(bot.owner, "and bread")
    assert "cannot call tools" in first and "cannot call tools" not in second, (first, second)
    assert all(entry["tools"] == [] for entry in standin.log), "expected no tools sent to a tool-less template"
    assert caplog.text.count("chat template cannot call tools") == 1, "expected one log line for the template"


async def test_an_over_long_history_loses_old_turns_and_the_answer_still_comes(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot()
    for n in range(6):
        await bot.send(bot.owner, f"note {n}: " + "lorem ipsum " * 60)
    standin.script(n_ctx=2200)
    [answer] = await bot.send(bot.owner, "still there?")
    assert answer.endswith("] still there?"), f"expected the model's answer, saw {answer!r}"
    assert standin.log[-1]["status"] == 200, standin.log[-1]
    assert len(bot.store.turns(bot.owner)) < 7, "expected the oldest turns dropped from the kept history"


async def test_a_rambling_answer_arrives_cut_with_a_note(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    standin.script(default={"ramble": "blah "})
    bot = make_bot(llm_max_tokens=30)
    [answer] = await bot.send(bot.owner, "talk")
    assert answer.startswith("blah") and answer.endswith("(The answer was cut at its length limit: ask me to go on.)")


async def test_a_private_chat_sees_the_answer_grow_in_a_draft(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    words = " ".join(f"w{n}" for n in range(30))
    standin.script(default={"content": words, "stream_delay": 0.1})
    bot = make_bot()
    assert await bot.send(bot.owner, "write") == [words]
    drafts = [call.text for call in bot.session.calls if type(call).__name__ == "SendMessageDraft"]
    assert drafts and all(words.startswith(draft) for draft in drafts), f"expected growing drafts, saw {drafts}"


async def test_a_stranger_who_blocked_the_bot_is_one_info_line_not_an_error(
    make_bot: Callable[..., BotUnderTest], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    bot.session.failures.append(
        TelegramForbiddenError(method=SendMessage(chat_id=STRANGER, text="x"), message="Forbidden: bot was blocked")
    )
    with caplog.at_level(logging.INFO):
        await bot.send(STRANGER, "hi")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
    assert "blocked the bot" in caplog.text


async def test_a_store_that_cannot_be_written_says_so_and_keeps_what_it_had(
    make_bot: Callable[..., BotUnderTest], standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    await bot.send(bot.owner, "remember the first thing")
    kept = bot.store.turns(bot.owner)
    bot.store.db.execute("PRAGMA query_only = ON")  # what a read-only or full disk does to every write
    [answer] = await bot.send(bot.owner, "and the second")
    assert answer.endswith("] and the second") and "could not save this conversation" in answer, answer
    assert "cannot save the conversation" in caplog.text
    bot.store.db.execute("PRAGMA query_only = OFF")
    assert bot.store.turns(bot.owner) == kept, "expected the stored history untouched by the failed write"

"""The whole bot in-process: updates go through the real dispatcher, middlewares and handlers.

Telegram is a recording session, the model is the scripted stand-in over HTTP, the tools are canned.
"""

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from butler_bot.app import build_dispatcher, log_access
from butler_bot.backends import Backends
from butler_bot.conversation import Conversations
from butler_bot.llm import ChatModel
from butler_bot.prompt import SystemPrompt
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook, WatchedFile
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import (
    FakeMcpTools,
    FakeToolbox,
    RecordingSession,
    recording_bot,
    release_routers,
    text_update,
)

OWNER = 1001
STRANGER = 666


class PrebuiltBackends(Backends):
    def __init__(self, settings: BotSettings, store: BotStore, conversations: Conversations) -> None:
        super().__init__(settings, store)
        self.prebuilt = conversations

    async def _load(self) -> Conversations:
        return self.prebuilt


@dataclass
class BotUnderTest:
    bot: Bot
    session: RecordingSession
    dp: Dispatcher
    toolbox: FakeToolbox
    mcp: FakeMcpTools
    store: BotStore
    backends: Backends

    async def send(self, user_id: int, text: str, **kwargs: Any) -> list[str]:
        """Deliver one update and return the texts the bot sent in answer."""
        before = len(self.session.sent())
        await self.dp.feed_update(self.bot, text_update(user_id, text, **kwargs))
        return [call.text for call in self.session.sent()[before:]]


@pytest.fixture
def make_bot(standin: StandIn, make_settings: Callable[..., BotSettings]) -> AsyncIterator[Callable[..., BotUnderTest]]:
    made: list[BotUnderTest] = []

    def build(toolbox: FakeToolbox | None = None, **overrides: Any) -> BotUnderTest:
        settings = make_settings(**({"llm_base_url": standin.url} | overrides))
        store = BotStore.open(settings.store_path, settings.history_turns)
        toolbox = toolbox or FakeToolbox()
        mcp = FakeMcpTools(toolbox)
        prompt = SystemPrompt(WatchedFile(settings.system_prompt_file))
        conversations = Conversations(settings, store, prompt, ChatModel(settings), mcp)  # type: ignore[arg-type]
        backends = PrebuiltBackends(settings, store, conversations)
        bot, session = recording_bot()
        release_routers()
        dp = build_dispatcher(settings, store, TextBook(settings.texts_file), backends)
        made.append(BotUnderTest(bot, session, dp, toolbox, mcp, store, backends))
        return made[-1]

    yield build
    for bot in made:
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


async def test_empty_allow_list_refuses_everyone_and_says_how_to_add_the_owner(
    make_bot: Callable[..., BotUnderTest], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(allowed_user_ids=())
    with caplog.at_level(logging.WARNING):
        log_access(bot.dp.workflow_data["settings"])
    assert "ALLOWED_USER_IDS is empty" in caplog.text and "ALLOWED_USER_IDS=<that id>" in caplog.text
    assert str(OWNER) in (await bot.send(OWNER, "hello"))[0]


async def test_the_owner_gets_the_model_answer_after_typing(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot()
    assert await bot.send(OWNER, "good morning") == ["echo: good morning"]
    assert bot.session.actions(OWNER)[:1] == ["typing"], "expected 'typing…' while the model works"
    assert set(bot.mcp.users) == {OWNER}, "expected every tool call made as the user who wrote"


async def test_group_chats_are_off_unless_configured(make_bot: Callable[..., BotUnderTest], standin: StandIn) -> None:
    bot = make_bot()
    replies = await bot.send(OWNER, "hello group", chat_id=-100, chat_type="supergroup")
    assert replies == ["I only talk in private chats: write to me directly."]
    assert standin.log == []
    allowed = make_bot(allow_group_chats=True)
    assert await allowed.send(OWNER, "hello group", chat_id=-100, chat_type="supergroup") == ["echo: hello group"]


async def test_texts_follow_the_telegram_language(make_bot: Callable[..., BotUnderTest]) -> None:
    bot = make_bot()
    [russian] = await bot.send(OWNER, "/help", language="ru")
    [english] = await bot.send(OWNER, "/help", language="en-GB")
    assert "Просто пишите мне" in russian and str(OWNER) in russian, russian
    assert "Just write to me" in english, english


async def test_tools_down_help_still_works_and_the_reply_says_so(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot(FakeToolbox(down=True))
    [help_text] = await bot.send(OWNER, "/help")
    assert "/tasks" in help_text
    [answer] = await bot.send(OWNER, "add buy milk")
    assert "tools (tasks, notes, reminders) are unavailable" in answer, answer
    assert await bot.send(OWNER, "/tasks") == [
        "My tools (tasks, notes, reminders) are unavailable right now. Please try again in a minute."
    ]


async def test_model_down_gets_a_clear_answer(make_bot: Callable[..., BotUnderTest]) -> None:
    bot = make_bot(llm_base_url="http://127.0.0.1:9/v1")
    [answer] = await bot.send(OWNER, "hello")
    assert answer.startswith("The language model is not ready yet"), answer


async def test_tasks_and_today_come_straight_from_the_tools(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    toolbox = FakeToolbox(
        {
            "tasks_list": {
                "tasks": [
                    {"id": 1, "title": "buy milk", "due": None, "overdue": False, "priority": "normal"},
                    {"id": 2, "title": "pay <rent> & bills", "due": "2025-11-24T18:00:00+03:00", "overdue": True},
                ],
                "more": False,
                "timezone": "Europe/Moscow",
            },
            "agenda_today": {
                "now": "2025-11-25T09:30:00+03:00",
                "timezone": "Europe/Moscow",
                "overdue_tasks": [],
                "due_today": [{"id": 3, "title": "call mum", "due": "2025-11-25T18:00:00+03:00"}],
                "reminders": [{"id": 7, "text": "stretch", "due": "2025-11-25T11:00:00+03:00"}],
                "more": False,
            },
        }
    )
    bot = make_bot(toolbox)
    [tasks] = await bot.send(OWNER, "/tasks")
    assert tasks.splitlines() == [
        "Your open tasks:",
        "• buy milk",
        "• pay <rent> & bills (due 2025-11-24 18:00) ⚠️ overdue",
    ]
    [today] = await bot.send(OWNER, "/today")
    assert "Due today:\n• call mum (due 2025-11-25 18:00)" in today and "• 11:00 stretch" in today, today
    assert standin.log == [], "expected /tasks and /today to answer without the model"


async def test_history_is_kept_across_restarts_and_reset_clears_it(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    first = make_bot()
    await first.send(OWNER, "my name is Ada")
    first.store.close()
    restarted = make_bot()
    await restarted.send(OWNER, "what is my name?")
    remembered = [m["content"] for m in standin.log[-1]["messages"][1:]]
    assert remembered == ["my name is Ada", "echo: my name is Ada", "what is my name?"], remembered

    assert await restarted.send(OWNER, "/reset") == [
        "Done: I forgot our conversation. Your tasks, notes and reminders are still there."
    ]
    await restarted.send(OWNER, "who am I?")
    assert [m["role"] for m in standin.log[-1]["messages"]] == ["system", "user"]


async def test_system_prompt_has_the_users_date_time_and_timezone(
    make_bot: Callable[..., BotUnderTest], standin: StandIn
) -> None:
    bot = make_bot(FakeToolbox({"time_now": {"timezone": "Asia/Tokyo"}}))
    await bot.send(OWNER, "hi")
    system = standin.log[-1]["messages"][0]["content"]
    assert "(Asia/Tokyo)" in system and "$date" not in system and "$time" not in system, system


async def test_awkward_and_long_replies_are_delivered(make_bot: Callable[..., BotUnderTest], standin: StandIn) -> None:
    awkward = "if 1 < 2 && 3 > 2 then *maybe <b>not** bold <br> & done"
    standin.script(
        {"when": "awkward", "replies": [{"content": awkward}]},
        {"when": "long", "replies": [{"content": "word " * 1500}]},
    )
    bot = make_bot()
    [delivered] = await bot.send(OWNER, "awkward")
    call = bot.session.sent(OWNER)[-1]
    assert call.parse_mode == "HTML" and "&lt;br&gt;" in delivered and "&amp;&amp;" in delivered, delivered
    parts = await bot.send(OWNER, "long")
    assert len(parts) == 2 and all(len(part) <= 4096 for part in parts), [len(part) for part in parts]
    assert " ".join(parts).split() == ["word"] * 1500


async def test_an_unexpected_error_is_logged_and_answered(
    make_bot: Callable[..., BotUnderTest], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database melted")

    bot.mcp.call = broken  # type: ignore[method-assign]
    replies = await bot.send(OWNER, "/tasks")
    assert replies == ["Sorry, something went wrong on my side. The error is logged; please try again."]
    assert "the database melted" in caplog.text


async def test_tools_lists_what_the_butler_can_do(make_bot: Callable[..., BotUnderTest]) -> None:
    [tools] = await make_bot().send(OWNER, "/tools")
    assert tools.splitlines() == ["What I can do:", "• tasks_add: The tasks_add tool", "• time_now: The time_now tool"]

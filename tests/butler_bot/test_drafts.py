"""An answer on its way, as the user sees it in the Bot API emulator: a growing draft, tool lines, then the message."""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from butler_bot import drafts
from butler_bot.drafts import ChatProgress
from butler_bot.replies import TELEGRAM_TEXT_LIMIT
from butler_bot.texts import SHIPPED_TEXTS, TextBook, Texts
from tests.e2e.emulator import client_post, make_bot, new_token

pytestmark = pytest.mark.e2e

USER_ID = 5151
GROUP_ID = -100515
DRAFT_ID = 17  # the id of the user's message the answer is for
TIMEOUT = 30.0  # seconds; generous, a loaded CI machine is slow


@pytest.fixture
def texts() -> Texts:
    return TextBook(SHIPPED_TEXTS).texts("en")


class Chat:
    """One chat in the emulator, seen from the user's side."""

    def __init__(self, url: str, token: str, chat_id: int) -> None:
        self.url, self.token, self.chat_id = url, token, chat_id

    async def drafts(self) -> list[dict[str, Any]]:
        return await client_post(self.url, "/getDrafts", {"token": self.token, "chat_id": self.chat_id})

    async def draft_texts(self) -> list[str]:
        return [draft["text"] for draft in await self.drafts()]

    async def messages(self) -> list[dict[str, Any]]:
        return await client_post(self.url, "/getUpdates", {"token": self.token, "chat_id": self.chat_id})

    async def actions(self) -> list[str]:
        found = await client_post(self.url, "/getChatActions", {"token": self.token, "chat_id": self.chat_id})
        return [action["action"] for action in found]

    async def wait_for_typing(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while "typing" not in await self.actions():
            assert time.monotonic() < deadline, f"expected 'typing…' within {TIMEOUT:.0f} s; saw none"
            await asyncio.sleep(0.1)

    async def wait_for_drafts(self, check: Callable[[list[str]], bool], what: str) -> list[str]:
        deadline = time.monotonic() + TIMEOUT
        seen = await self.draft_texts()
        while not check(seen):
            assert time.monotonic() < deadline, f"expected {what} within {TIMEOUT:.0f} s; the drafts were {seen}"
            await asyncio.sleep(0.1)
            seen = await self.draft_texts()
        return seen


async def user_writes(url: str, token: str, chat: dict[str, Any] | None = None) -> None:
    """The user's message makes the emulator know the chat (a group, when `chat` says so)."""
    payload = {"token": token, "user_id": USER_ID, "text": "hello"} | ({"chat": chat} if chat else {})
    await client_post(url, "/sendMessage", payload)


async def test_a_private_chat_sees_the_answer_grow_with_tool_lines_then_the_message(
    emulator_url: str, texts: Texts
) -> None:
    token = new_token()
    await user_writes(emulator_url, token)
    chat = Chat(emulator_url, token, USER_ID)
    bot = make_bot(emulator_url, token)
    try:
        async with ChatProgress(bot, USER_ID, private=True, draft_id=DRAFT_ID, texts=texts) as progress:
            await chat.wait_for_typing()
            await progress.text("Let me")
            await chat.wait_for_drafts(lambda seen: seen[-1:] == ["Let me"], "the first words")
            await progress.tool("tasks_add")
            await chat.wait_for_drafts(lambda seen: seen[-1:] == ["Adding the task…"], "the tasks_add line")
            await progress.tool("a_tool_without_a_line")
            await chat.wait_for_drafts(lambda seen: seen[-1:] == ["Working on it…"], "the generic tool line")
            await progress.text("Added **milk** & eggs")
            await chat.wait_for_drafts(lambda seen: seen[-1:] == ["Added <b>milk</b> &amp; eggs"], "the answer")
            await progress.finish("Added **milk** & eggs to your list.", formatted=True)
    finally:
        await bot.session.close()

    found = await chat.drafts()
    shown = [(draft["draft_id"], draft["text"], draft.get("parse_mode")) for draft in found]
    assert shown == [
        (DRAFT_ID, "Let me", "HTML"),
        (DRAFT_ID, "Adding the task…", "HTML"),
        (DRAFT_ID, "Working on it…", "HTML"),
        (DRAFT_ID, "Added <b>milk</b> &amp; eggs", "HTML"),
    ], f"expected each step once, in order, in one draft; saw {shown}"
    messages = await chat.messages()
    assert [m["message"]["text"] for m in messages] == ["Added <b>milk</b> &amp; eggs to your list."], (
        f"expected the whole answer as one formatted message, saw {messages}"
    )
    assert found[-1]["time"] <= messages[0]["time"], "expected no draft after the message"


async def test_a_fast_stream_is_throttled_and_its_end_still_shown(emulator_url: str, texts: Texts) -> None:
    token = new_token()
    await user_writes(emulator_url, token)
    chat = Chat(emulator_url, token, USER_ID)
    words = [f"word{n}" for n in range(40)]
    bot = make_bot(emulator_url, token)
    try:
        async with ChatProgress(bot, USER_ID, private=True, draft_id=DRAFT_ID, texts=texts) as progress:
            for count in range(1, len(words) + 1):
                await progress.text(" ".join(words[:count]))
                await progress.text(" ".join(words[:count]))  # unchanged text is not sent again
                await asyncio.sleep(0.01)
            seen = await chat.wait_for_drafts(lambda seen: seen[-1:] == [" ".join(words)], "the whole text")
            await progress.finish(" ".join(words), formatted=True)
    finally:
        await bot.session.close()

    assert len(seen) < len(words), f"expected fewer drafts than the {len(words)} updates, saw {len(seen)}: {seen}"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen)), (
        f"expected each draft to extend the one before, saw {seen}"
    )


async def test_an_unchanged_draft_is_refreshed_before_telegram_drops_it(
    emulator_url: str, texts: Texts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drafts, "DRAFT_REFRESH", 0.5)
    token = new_token()
    await user_writes(emulator_url, token)
    chat = Chat(emulator_url, token, USER_ID)
    bot = make_bot(emulator_url, token)
    try:
        async with ChatProgress(bot, USER_ID, private=True, draft_id=DRAFT_ID, texts=texts) as progress:
            await progress.tool("notes_search")
            seen = await chat.wait_for_drafts(lambda seen: len(seen) >= 3, "the same line sent again")
            await progress.finish("Nothing found.", formatted=False)
    finally:
        await bot.session.close()
    assert set(seen) == {"Searching your notes…"}, f"expected only the notes_search line, again and again; saw {seen}"


async def test_a_long_answer_drafts_its_last_part_and_arrives_whole(emulator_url: str, texts: Texts) -> None:
    token = new_token()
    await user_writes(emulator_url, token)
    chat = Chat(emulator_url, token, USER_ID)
    answer = "\n\n".join(["a" * 3000, "b" * 3000])
    bot = make_bot(emulator_url, token)
    try:
        async with ChatProgress(bot, USER_ID, private=True, draft_id=DRAFT_ID, texts=texts) as progress:
            await progress.text(answer)
            seen = await chat.wait_for_drafts(bool, "a draft")
            await progress.finish(answer, formatted=True)
    finally:
        await bot.session.close()
    assert seen == ["b" * 3000], f"expected the draft to show the part past {TELEGRAM_TEXT_LIMIT}, saw {seen!r:.80}"
    messages = [m["message"]["text"] for m in await chat.messages()]
    assert messages == ["a" * 3000, "b" * 3000], f"expected the answer in two messages, saw {messages!r:.120}"


async def test_a_group_gets_typing_and_the_message_but_no_drafts(emulator_url: str, texts: Texts) -> None:
    token = new_token()
    await user_writes(emulator_url, token, chat={"id": GROUP_ID, "type": "group", "title": "Family"})
    chat = Chat(emulator_url, token, GROUP_ID)
    bot = make_bot(emulator_url, token)
    try:
        async with ChatProgress(bot, GROUP_ID, private=False, draft_id=DRAFT_ID, texts=texts) as progress:
            await progress.text("Hello")
            await progress.tool("tasks_add")
            await chat.wait_for_typing()
            await progress.finish("Hello, family.", formatted=True)
    finally:
        await bot.session.close()
    assert await chat.draft_texts() == [], "expected no drafts in a group"
    assert [m["message"]["text"] for m in await chat.messages()] == ["Hello, family."]


async def test_refused_drafts_never_fail_the_answer(
    emulator_url: str, texts: Texts, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token()
    # Telegram refuses drafts outside private chats: here every draft call fails.
    await user_writes(emulator_url, token, chat={"id": GROUP_ID, "type": "supergroup", "title": "Family"})
    bot = make_bot(emulator_url, token)
    try:
        with caplog.at_level(logging.DEBUG, logger="butler_bot.drafts"):
            async with ChatProgress(bot, GROUP_ID, private=True, draft_id=DRAFT_ID, texts=texts) as progress:
                await progress.text("Hello")
                deadline = time.monotonic() + TIMEOUT
                while "TEXTDRAFT_PEER_INVALID" not in caplog.text:
                    assert time.monotonic() < deadline, f"expected a DEBUG line for the refused draft: {caplog.text}"
                    await asyncio.sleep(0.1)
                await progress.text("Hello, family")
                await progress.finish("Hello, family.", formatted=True)
    finally:
        await bot.session.close()
    messages = await Chat(emulator_url, token, GROUP_ID).messages()
    assert [m["message"]["text"] for m in messages] == ["Hello, family."], f"expected the answer, saw {messages}"
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG and r.name == "butler_bot.drafts"], (
        "expected refused drafts to be logged at DEBUG only"
    )

"""aiogram 3 against the Telegram Bot API emulator image (telegram_emulator/), run alone in Docker.

The emulator has two sides: the bot side `/bot<token>/<method>` that aiogram calls, and the client
side a test (or a developer with curl) uses to play the user: POST /sendMessage to write to the bot,
POST /getUpdates to read the bot's new replies, POST /getChatActions to see "typing…" and the like,
POST /getDrafts to see the drafts the bot showed while it wrote (sendMessageDraft).
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiogram import Dispatcher
from aiogram.enums import ChatAction, ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import CommandStart
from aiogram.types import Message

from tests.e2e.emulator import client_post, make_bot, new_token, running_emulator
from tests.e2e.telegram_user import TelegramUser

pytestmark = pytest.mark.e2e

USER_ID = 4242
REPLY_TIMEOUT = 30.0  # seconds; generous, a loaded CI machine is slow


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running_emulator() as url:
        yield url


async def bot_call(url: str, token: str, method: str, params: dict[str, Any]) -> Any:
    """Call a bot-side method directly, as a form POST like aiogram's, and return its `result`."""
    status, body = await bot_call_raw(url, token, method, params)
    assert status == 200 and body.get("ok") is True, (
        f"expected {method} to answer 200 with ok=true, got {status} {body!r}"
    )
    return body["result"]


async def bot_call_raw(url: str, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Call a bot-side method and return its HTTP status and JSON body, whatever they are."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        response = await client.post(f"/bot{token}/{method}", data=params)
    return response.status_code, response.json()


async def wait_for_replies(url: str, token: str, chat_id: int) -> list[dict[str, Any]]:
    """The bot's new replies in a chat, read through the client side, waiting up to REPLY_TIMEOUT for one."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    while time.monotonic() < deadline:
        replies = await client_post(url, "/getUpdates", {"token": token, "chat_id": chat_id})
        if replies:
            return replies
        await asyncio.sleep(0.2)
    return []


async def test_get_me_reports_a_bot(emulator_url: str) -> None:
    token = new_token()
    bot = make_bot(emulator_url, token)
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    assert me.is_bot is True, f"expected getMe to say is_bot=True, got {me!r}"
    expected_id = int(token.split(":")[0])
    assert me.id == expected_id, f"expected getMe's id to be the token's numeric prefix {expected_id}, got {me.id}"
    assert me.username and me.first_name, f"expected getMe to have a username and a first_name, got {me!r}"


async def test_polling_bot_shows_typing_then_answers_start(emulator_url: str) -> None:
    token = new_token()
    bot = make_bot(emulator_url, token)
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        await message.answer(f"Hello, {message.from_user.first_name}! I am Butler.")

    polling = asyncio.create_task(dispatcher.start_polling(bot, polling_timeout=2, handle_signals=False))
    try:
        await client_post(
            emulator_url, "/sendMessage", {"token": token, "user_id": USER_ID, "first_name": "Ada", "text": "/start"}
        )
        replies = await wait_for_replies(emulator_url, token, USER_ID)
    finally:
        try:
            await asyncio.wait_for(dispatcher.stop_polling(), timeout=15)
        except RuntimeError:  # polling never got going: nothing to stop gracefully
            polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)

    texts = [reply["message"]["text"] for reply in replies]
    assert texts == ["Hello, Ada! I am Butler."], (
        f"expected one reply 'Hello, Ada! I am Butler.' within {REPLY_TIMEOUT:.0f} s, got {texts!r}"
    )
    actions = await client_post(emulator_url, "/getChatActions", {"token": token, "chat_id": USER_ID})
    seen = [action["action"] for action in actions]
    assert seen == ["typing"], f"expected the bot to show one 'typing' action in chat {USER_ID}, got {seen!r}"
    assert actions[0]["time"] <= replies[0]["time"], (
        f"expected 'typing' before the reply, got typing at {actions[0]['time']} and the reply at {replies[0]['time']}"
    )
    # aiogram confirmed the /start update through getUpdates' offset, so it is not delivered again.
    again = await bot_call(emulator_url, token, "getUpdates", {"timeout": 0})
    assert again == [], f"expected no pending updates once the bot had handled /start, got {again!r}"


async def test_html_parse_mode_round_trips(emulator_url: str) -> None:
    token = new_token()
    source = "1 &lt; 2 &amp;&amp; 3 &gt; 2: <b>true</b> &quot;ok&quot; <i>🙂</i>"
    bot = make_bot(emulator_url, token)
    try:
        sent = await bot.send_message(USER_ID, source, parse_mode=ParseMode.HTML)
        with pytest.raises(TelegramBadRequest) as rejected:
            await bot.send_message(USER_ID, "a<br>b", parse_mode=ParseMode.HTML)
    finally:
        await bot.session.close()

    # What aiogram gets back is what Telegram shows the user: entities decoded, tags made entities.
    assert sent.text == '1 < 2 && 3 > 2: true "ok" 🙂', f"expected the rendered text, got {sent.text!r}"
    entities = [(e.type, e.offset, e.length) for e in sent.entities or []]
    assert entities == [("bold", 16, 4), ("italic", 26, 2)], (
        f"expected bold 'true' at 16 and italic '🙂' at 26 (UTF-16 offsets), got {entities!r}"
    )
    assert "can't parse entities" in rejected.value.message, (
        f"expected Telegram's 'can't parse entities' for <br>, got {rejected.value.message!r}"
    )

    # The client side sees exactly what the bot sent: the HTML source, escapes intact, and its parse_mode.
    replies = await wait_for_replies(emulator_url, token, USER_ID)
    seen = [(r["message"]["text"], r["message"].get("parse_mode")) for r in replies]
    assert seen == [(source, "HTML")], f"expected the one valid message {source!r} with parse_mode HTML, got {seen!r}"


async def test_get_updates_long_polls_and_honours_offset(emulator_url: str) -> None:
    token = new_token()
    started = time.monotonic()
    empty = await bot_call(emulator_url, token, "getUpdates", {"timeout": 1})
    waited = time.monotonic() - started
    assert empty == [] and waited >= 0.9, (
        f"expected an empty answer after ~1 s of waiting, got {empty!r} after {waited:.2f} s"
    )

    poll = asyncio.create_task(bot_call(emulator_url, token, "getUpdates", {"timeout": 20}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await client_post(emulator_url, "/sendMessage", {"token": token, "user_id": USER_ID, "text": "hello"})
    updates = await asyncio.wait_for(poll, timeout=10)
    woke = time.monotonic() - started
    assert [u["message"]["text"] for u in updates] == ["hello"] and woke < 5, (
        f"expected the waiting poll to return 'hello' at once, got {updates!r} after {woke:.2f} s"
    )
    update_id = updates[0]["update_id"]
    unconfirmed = await bot_call(emulator_url, token, "getUpdates", {"offset": update_id})
    assert [u["update_id"] for u in unconfirmed] == [update_id], (
        f"expected update {update_id} again until confirmed, got {unconfirmed!r}"
    )
    confirmed = await bot_call(emulator_url, token, "getUpdates", {"offset": update_id + 1})
    assert confirmed == [], f"expected nothing after confirming {update_id} with offset, got {confirmed!r}"


async def test_drafts_grow_in_a_private_chat_and_the_client_sees_them(emulator_url: str) -> None:
    token = new_token()
    await client_post(emulator_url, "/sendMessage", {"token": token, "user_id": USER_ID, "text": "tell me a story"})
    bot = make_bot(emulator_url, token)
    try:
        thinking = await bot.send_message_draft(USER_ID, draft_id=7, text="")
        first = await bot.send_message_draft(USER_ID, draft_id=7, text="Once upon")
        second = await bot.send_message_draft(USER_ID, draft_id=7, text="Once upon a <b>time</b>", parse_mode="HTML")
        await bot.send_message(USER_ID, "Once upon a time, the end.")
    finally:
        await bot.session.close()

    assert (thinking, first, second) == (True, True, True), (
        f"expected sendMessageDraft to return True each time, got {(thinking, first, second)!r}"
    )
    drafts = await client_post(emulator_url, "/getDrafts", {"token": token, "chat_id": USER_ID})
    seen = [(d["draft_id"], d["text"], d.get("parse_mode")) for d in drafts]
    assert seen == [(7, "", None), (7, "Once upon", None), (7, "Once upon a <b>time</b>", "HTML")], (
        f"expected the placeholder, then the two growing drafts of draft 7 in order, got {seen!r}"
    )
    user_sees = TelegramUser(emulator_url, token, USER_ID).drafts()
    assert user_sees == [text for _, text, _ in seen], f"expected TelegramUser to see {seen!r}, got {user_sees!r}"
    replies = await wait_for_replies(emulator_url, token, USER_ID)
    assert [r["message"]["text"] for r in replies] == ["Once upon a time, the end."], (
        f"expected the final message as the only reply (drafts are not messages), got {replies!r}"
    )
    assert drafts[-1]["time"] <= replies[0]["time"], (
        f"expected the drafts before the message, got the last draft at {drafts[-1]['time']} "
        f"and the message at {replies[0]['time']}"
    )
    other_chat = await client_post(emulator_url, "/getDrafts", {"token": token, "chat_id": USER_ID + 1})
    assert other_chat == [], f"expected no drafts in another chat, got {other_chat!r}"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"chat_id": -100123, "draft_id": 1, "text": "hi"}, "Bad Request: TEXTDRAFT_PEER_INVALID"),
        ({"chat_id": USER_ID, "text": "hi"}, "Bad Request: draft_id is empty"),
        ({"chat_id": USER_ID, "draft_id": 0, "text": "hi"}, "Bad Request: draft_id must be a non-zero integer"),
        ({"chat_id": USER_ID, "draft_id": 1, "text": "x" * 4097}, "Bad Request: message is too long"),
        ({"chat_id": USER_ID, "draft_id": 1, "text": "a<br>b", "parse_mode": "HTML"}, "Bad Request: can't parse"),
    ],
    ids=["group-chat", "no-draft-id", "zero-draft-id", "too-long", "bad-html"],
)
async def test_bad_drafts_get_telegram_shaped_400s_and_are_not_shown(
    emulator_url: str, params: dict[str, Any], expected: str
) -> None:
    token = new_token()
    status, body = await bot_call_raw(emulator_url, token, "sendMessageDraft", params)
    assert status == 400 and body.get("ok") is False and body.get("error_code") == 400, (
        f"expected a 400 with ok=false for {params!r}, got {status} {body!r}"
    )
    assert body.get("description", "").startswith(expected), (
        f"expected a description starting {expected!r}, got {body.get('description')!r}"
    )
    drafts = await client_post(emulator_url, "/getDrafts", {"token": token})
    assert drafts == [], f"expected a refused draft not to be recorded, got {drafts!r}"


async def test_a_group_the_user_wrote_from_refuses_drafts_through_aiogram(emulator_url: str) -> None:
    token = new_token()
    group = {"id": -100777, "type": "supergroup", "title": "Family"}
    await client_post(emulator_url, "/sendMessage", {"token": token, "user_id": USER_ID, "chat": group, "text": "hi"})
    bot = make_bot(emulator_url, token)
    try:
        with pytest.raises(TelegramBadRequest) as refused:
            await bot.send_message_draft(group["id"], draft_id=1, text="Hello, family")
    finally:
        await bot.session.close()
    assert "TEXTDRAFT_PEER_INVALID" in refused.value.message, (
        f"expected Telegram's TEXTDRAFT_PEER_INVALID for a draft in a group, got {refused.value.message!r}"
    )

"""Inline buttons in the Bot API emulator, as aiogram and a user meet them: press, answer, edit.

Client side: POST /sendCallback presses a button under a bot message, POST /getCallbackAnswers reads the bot's
answers to the presses, POST /getMessage shows a message as it is now (text and buttons after edits).
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from tests.e2e.emulator import client_post, make_bot, new_token, running_emulator

pytestmark = pytest.mark.e2e

USER_ID = 4343


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running_emulator() as url:
        yield url


@pytest.fixture
async def chat(emulator_url: str) -> AsyncIterator[tuple[Bot, str]]:
    token = new_token()
    await client_post(emulator_url, "/sendMessage", {"token": token, "user_id": USER_ID, "text": "hi"})
    bot = make_bot(emulator_url, token)
    hello = await bot.get_updates()
    await bot.get_updates(offset=hello[-1].update_id + 1)  # confirmed: the updates in a test are its own
    try:
        yield bot, token
    finally:
        await bot.session.close()


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=f"data:{label}") for label in labels]]
    )


async def client(url: str, token: str, path: str, **payload: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.post(path, json={"token": token, "chat_id": USER_ID, **payload})


async def test_a_press_reaches_the_bot_as_a_callback_query_and_its_answer_is_kept(
    emulator_url: str, chat: tuple[Bot, str]
) -> None:
    bot, token = chat
    sent = await bot.send_message(USER_ID, "pick one", reply_markup=keyboard("A", "B"))
    pressed = await client_post(
        emulator_url, "/sendCallback", {"token": token, "user_id": USER_ID, "message_id": sent.message_id, "text": "B"}
    )
    (update,) = await bot.get_updates(timeout=5)
    query = update.callback_query
    assert query is not None and query.data == "data:B" and query.id == pressed["callback_query_id"], update
    assert query.from_user.id == USER_ID and query.chat_instance, query
    assert query.message is not None and query.message.message_id == sent.message_id, query.message

    assert await bot.answer_callback_query(query.id, text="B it is")
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query(query.id, text="twice")
    answers = await client_post(emulator_url, "/getCallbackAnswers", {"token": token, "chat_id": USER_ID})
    assert [(a["data"], a["answer"]["text"]) for a in answers] == [("data:B", "B it is")], answers


async def test_only_a_button_the_message_has_can_be_pressed(emulator_url: str, chat: tuple[Bot, str]) -> None:
    bot, token = chat
    sent = await bot.send_message(USER_ID, "pick one", reply_markup=keyboard("A"))
    missing = await client(emulator_url, token, "/sendCallback", user_id=USER_ID, message_id=sent.message_id, text="Z")
    assert missing.status_code == 400 and "no button" in missing.json()["description"], missing.json()
    plain = await bot.send_message(USER_ID, "no buttons here")
    on_plain = await client(
        emulator_url, token, "/sendCallback", user_id=USER_ID, message_id=plain.message_id, text="A"
    )
    assert on_plain.status_code == 400, f"expected a press on a message without buttons refused, saw {on_plain.json()}"


async def test_an_answer_longer_than_200_characters_is_refused(emulator_url: str, chat: tuple[Bot, str]) -> None:
    bot, token = chat
    sent = await bot.send_message(USER_ID, "pick", reply_markup=keyboard("A"))
    await client_post(emulator_url, "/sendCallback", {"token": token, "user_id": USER_ID, "text": "A"})
    (update,) = await bot.get_updates(timeout=5)
    assert update.callback_query is not None and update.callback_query.message.message_id == sent.message_id
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(update.callback_query.id, text="x" * 201)


async def test_edits_keep_only_the_buttons_they_send(emulator_url: str, chat: tuple[Bot, str]) -> None:
    bot, token = chat
    sent = await bot.send_message(USER_ID, "pick", reply_markup=keyboard("A", "B"))

    async def shown() -> dict[str, Any]:
        return await client_post(
            emulator_url, "/getMessage", {"token": token, "chat_id": USER_ID, "message_id": sent.message_id}
        )

    await bot.edit_message_text("B left", chat_id=USER_ID, message_id=sent.message_id, reply_markup=keyboard("B"))
    assert (await shown())["reply_markup"] == keyboard("B").model_dump(exclude_none=True), await shown()
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_reply_markup(chat_id=USER_ID, message_id=sent.message_id, reply_markup=keyboard("B"))
    await bot.edit_message_text("all done", chat_id=USER_ID, message_id=sent.message_id)
    now = await shown()
    assert now["text"] == "all done" and "reply_markup" not in now and "edit_date" in now, (
        f"expected an edit without reply_markup to drop the buttons, as Telegram does; saw {now}"
    )

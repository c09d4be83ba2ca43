"""Everything else the user writes goes to the agent; anything but text gets a one-line answer."""

from aiogram import Bot, F, Router
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.replies import send_text, typing
from butler_bot.texts import Texts

router = Router(name="chat")


@router.message(F.text)
async def chat(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None and message.text is not None
    async with typing(bot, message.chat.id):
        conversations = await backends.conversations()
        answer = await conversations.reply(message.chat.id, message.from_user.id, message.text, texts)
    await send_text(bot, message.chat.id, answer.text, formatted=answer.from_model)


@router.message()
async def not_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("text_only"), parse_mode=None)

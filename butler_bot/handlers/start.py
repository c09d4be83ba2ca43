"""/start and /help: what the butler is and how to talk to it. Neither needs the model or the tools."""

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from butler_bot.texts import Texts

router = Router(name="start")


@router.message(CommandStart())
async def start(message: Message, texts: Texts) -> None:
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(texts("start", name=name), parse_mode=None)


@router.message(Command("help"))
async def show_help(message: Message, texts: Texts) -> None:
    user_id = message.from_user.id if message.from_user else "?"
    await message.answer(texts("help", user_id=user_id), parse_mode=None)

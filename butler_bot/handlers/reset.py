"""/reset: forget the conversation; tasks, notes and reminders live in the MCP server and stay."""

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from butler_bot.store import BotStore
from butler_bot.texts import Texts

router = Router(name="reset")


@router.message(Command("reset"))
async def reset(message: Message, store: BotStore, texts: Texts) -> None:
    store.clear_history(message.chat.id)
    await message.answer(texts("reset_done"), parse_mode=None)

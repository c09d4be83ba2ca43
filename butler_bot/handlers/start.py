"""/start: the greeting."""

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.types import Message

router = Router(name="start")

GREETING = "Hello! I am your butler. Tell me what to remember, plan or remind you of."


@router.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer(GREETING)

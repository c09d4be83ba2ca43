"""Any other text goes to the language model."""

from aiogram import F, Router
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender
from openai import AsyncOpenAI

from butler_bot.llm import ModelNotReady, ask
from butler_bot.settings import BotSettings

router = Router(name="chat")


@router.message(F.text)
async def chat(message: Message, llm: AsyncOpenAI, settings: BotSettings) -> None:
    async with ChatActionSender.typing(bot=message.bot, chat_id=message.chat.id):
        try:
            reply = await ask(llm, settings.llm_model, message.text or "")
        except ModelNotReady as exc:
            reply = str(exc)
    await message.answer(reply or "…")

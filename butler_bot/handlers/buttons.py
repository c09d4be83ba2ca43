"""Buttons under old messages: the bot sends none today, so a press gets a short answer and never reaches the
model; answering it also stops the Telegram client's spinner."""

from aiogram import Router
from aiogram.types import CallbackQuery

from butler_bot.texts import Texts

router = Router(name="buttons")


@router.callback_query()
async def old_button(callback: CallbackQuery, texts: Texts) -> None:
    await callback.answer(texts("old_button"))

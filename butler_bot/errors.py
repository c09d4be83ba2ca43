"""The one place unexpected handler errors end up: logged with context, answered in one sentence."""

import logging

from aiogram import Router
from aiogram.types import ErrorEvent

from butler_bot.texts import Texts

log = logging.getLogger(__name__)

router = Router(name="errors")


@router.error()
async def report_error(event: ErrorEvent, texts: Texts | None = None) -> None:
    message = event.update.message
    log.error(
        "update %s from chat %s failed: %r",
        event.update.update_id,
        message.chat.id if message else "-",
        event.exception,
        exc_info=event.exception,
    )
    if message and texts is not None:
        await message.answer(texts("something_went_wrong"), parse_mode=None)

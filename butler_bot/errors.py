"""The one place unexpected handler errors end up: logged with context, answered in one sentence."""

import logging

from aiogram import Router
from aiogram.types import ErrorEvent

log = logging.getLogger(__name__)

router = Router(name="errors")

SOMETHING_WENT_WRONG = "Sorry, something went wrong on my side. The error is logged; please try again."


@router.error()
async def report_error(event: ErrorEvent) -> None:
    message = event.update.message
    log.exception(
        "update %s from chat %s failed: %s",
        event.update.update_id,
        message.chat.id if message else "-",
        event.exception,
        exc_info=event.exception,
    )
    if message:
        await message.answer(SOMETHING_WENT_WRONG)

"""Reaching the Bot API: wait for it at start-up, and stop with one line if it rejects the token."""

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramServerError, TelegramUnauthorizedError
from aiogram.types import User

log = logging.getLogger(__name__)


async def wait_for_bot_api(bot: Bot, api_url: str) -> User:
    """Return the bot's own user once the Bot API answers; an emulator may still be starting."""
    delay = 1.0
    while True:
        try:
            return await bot.get_me()
        except TelegramUnauthorizedError:
            log.error("TELEGRAM_BOT_TOKEN was rejected by %s: check the token from @BotFather", api_url)
            raise SystemExit(2) from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning("Bot API at %s is not reachable yet (%s); retrying in %.0f s", api_url, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

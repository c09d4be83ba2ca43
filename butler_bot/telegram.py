"""Reaching the Bot API: wait for it at start-up, stop with one line on a bad token, obey flood control."""

import asyncio
import logging

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError, TelegramUnauthorizedError
from aiogram.methods import SendChatAction, TelegramMethod
from aiogram.methods.base import Response, TelegramType
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


class RetryAfterMiddleware(BaseRequestMiddleware):
    """On a 429, wait the `retry_after` Telegram names and send again (a few times, for a bounded wait).

    A "typing…" action is not worth waiting for: it is dropped instead.
    """

    def __init__(self, attempts: int = 3, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if isinstance(method, SendChatAction) or attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                log.warning(
                    "flood control on %s: waiting %s s as Telegram asks (attempt %s of %s)",
                    type(method).__name__,
                    exc.retry_after,
                    attempt,
                    self.attempts,
                )
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable: the last attempt returns or raises")

"""Updates being handled when the bot stops: let them finish, so a restart never swallows a message.

Telegram marks an update as read as soon as the next getUpdates is sent, which aiogram does while the handler still
runs: a message whose answer dies with the process is never delivered again. So on shutdown (SIGTERM from
`docker stop`, SIGINT from a hot reload) the bot waits up to `shutdown_grace_seconds` for the answers in progress
before it closes its clients, and tells the chats whose answer it had to cut short to send their message again.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, TelegramObject

from butler_bot.settings import BotSettings
from butler_bot.texts import Texts

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class InFlightMiddleware(BaseMiddleware):
    """Remembers each update's task while it is handled, with the chat to tell if it is cut short."""

    def __init__(self) -> None:
        self._handling: dict[asyncio.Task[Any], tuple[Chat | None, Texts | None]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        assert task is not None  # aiogram runs every update in a task of its own
        self._handling[task] = (data.get("event_chat"), data.get("texts"))
        try:
            return await handler(event, data)
        finally:
            del self._handling[task]

    async def finish(self, bot: Bot, settings: BotSettings) -> None:
        """The dispatcher's shutdown hook: wait for the answers in progress, cancel what overruns the grace."""
        handling = dict(self._handling)
        if not handling:
            return
        log.info("waiting up to %g s for %d answer(s) in progress", settings.shutdown_grace_seconds, len(handling))
        _, overran = await asyncio.wait(set(handling), timeout=settings.shutdown_grace_seconds)
        for task in overran:
            task.cancel()
        await asyncio.gather(*overran, return_exceptions=True)
        for task in overran:
            chat, texts = handling[task]
            log.warning("the answer in chat %s was cut short by the shutdown", chat.id if chat else "-")
            if chat is not None and texts is not None:
                # Best effort: the bot is going away, and a failed notice must not hold up the rest.
                with suppress(TelegramAPIError, OSError, asyncio.TimeoutError):
                    await bot.send_message(chat.id, texts("restarted_mid_answer"), parse_mode=None)

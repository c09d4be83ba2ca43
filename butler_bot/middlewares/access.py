"""Owner-only: updates from anyone not in ALLOWED_USER_IDS stop here, before any model or tool call."""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import Chat, TelegramObject, User

from butler_bot.texts import TextBook, language_of

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Strangers remembered for the refusal cool-down; older entries are dropped past this many.
MAX_REMEMBERED_STRANGERS = 10_000


class AccessMiddleware(BaseMiddleware):
    def __init__(
        self, allowed_user_ids: tuple[int, ...], allow_group_chats: bool, textbook: TextBook, cooldown: float
    ) -> None:
        self.allowed = frozenset(allowed_user_ids)
        self.allow_group_chats = allow_group_chats
        self.textbook = textbook
        self.cooldown = cooldown
        self._refused_at: dict[int, float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is None or user.is_bot:
            return None
        private = chat is None or chat.type == ChatType.PRIVATE
        if user.id not in self.allowed:
            # In a group a refusal would answer every stranger there; only a private chat gets one.
            if private:
                await self.refuse(data["bot"], user, chat)
            return None
        if not private and not self.allow_group_chats:
            log.info("ignored chat %s (%s): group chats are off (ALLOW_GROUP_CHATS)", chat.id, chat.type)
            if self._may_tell(chat.id):
                texts = self.textbook.texts(language_of(user.language_code))
                await data["bot"].send_message(chat.id, texts("private_only"))
            return None
        return await handler(event, data)

    async def refuse(self, bot: Bot, user: User, chat: Chat | None) -> None:
        if chat is None or not self._may_tell(user.id):
            return
        log.warning(
            "refused Telegram user %s (@%s): not in ALLOWED_USER_IDS; to let them in, add %s there and restart",
            user.id,
            user.username or "-",
            user.id,
        )
        texts = self.textbook.texts(language_of(user.language_code))
        try:
            await bot.send_message(chat.id, texts("refusal", user_id=user.id))
        except TelegramForbiddenError:
            # The stranger blocked the bot: nothing to tell them, nothing wrong here.
            log.info("could not tell Telegram user %s they are refused: they blocked the bot", user.id)

    def _may_tell(self, key: int) -> bool:
        """One refusal per user (or chat) per cool-down, so a stranger cannot make the bot spam."""
        now = time.monotonic()
        if now - self._refused_at.get(key, float("-inf")) < self.cooldown:
            return False
        if len(self._refused_at) >= MAX_REMEMBERED_STRANGERS:
            self._refused_at = {k: t for k, t in self._refused_at.items() if now - t < self.cooldown}
        self._refused_at[key] = now
        return True

"""Owner-only: updates from anyone not allowed stop here, before any model or tool call.

Allowed are the users in ALLOWED_USER_IDS or, when it is empty, the paired owner and their guests. While the bot
has no owner, a stranger's /pair (in a private chat) goes through to the pairing handler, and nothing else does.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramForbiddenError
from aiogram.filters import Command
from aiogram.types import Chat, TelegramObject, Update, User

from butler_bot.pairing import Pairing
from butler_bot.texts import TextBook, language_of

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Strangers remembered for the refusal cool-down; older entries are dropped past this many.
MAX_REMEMBERED_STRANGERS = 10_000
# The one command a stranger may send; the pairing handler matches the same filter, so nothing else sees it.
PAIR_COMMAND = Command("pair")


class AccessMiddleware(BaseMiddleware):
    def __init__(self, pairing: Pairing, allow_group_chats: bool, textbook: TextBook, cooldown: float) -> None:
        self.pairing = pairing
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
        if not self.pairing.allows(user.id):
            if private and self.pairing.is_open() and await self._is_pair_command(event, data):
                return await handler(event, data)
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
        if self.pairing.configured:
            refusal, remedy = "refusal", "not in ALLOWED_USER_IDS; to let them in, add %s there and restart"
        elif self.pairing.owner() is None:
            refusal, remedy = "refusal_unpaired", "the bot has no owner yet (make pair shows the code); their id: %s"
        else:
            refusal, remedy = "refusal_paired", "not let in; the owner can send /allow %s"
        log.warning("refused Telegram user %s (@%s): " + remedy, user.id, user.username or "-", user.id)
        texts = self.textbook.texts(language_of(user.language_code))
        try:
            await bot.send_message(chat.id, texts(refusal, user_id=user.id))
        except TelegramForbiddenError:
            # The stranger blocked the bot: nothing to tell them, nothing wrong here.
            log.info("could not tell Telegram user %s they are refused: they blocked the bot", user.id)

    @staticmethod
    async def _is_pair_command(event: TelegramObject, data: dict[str, Any]) -> bool:
        message = event.message if isinstance(event, Update) else None
        return message is not None and bool(await PAIR_COMMAND(message, data["bot"]))

    def _may_tell(self, key: int) -> bool:
        """One refusal per user (or chat) per cool-down, so a stranger cannot make the bot spam."""
        now = time.monotonic()
        if now - self._refused_at.get(key, float("-inf")) < self.cooldown:
            return False
        if len(self._refused_at) >= MAX_REMEMBERED_STRANGERS:
            self._refused_at = {k: t for k, t in self._refused_at.items() if now - t < self.cooldown}
        self._refused_at[key] = now
        return True

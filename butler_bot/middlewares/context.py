"""Per-request context: the user's language and its texts, for handlers and the error handler alike."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from butler_bot.store import BotStore
from butler_bot.texts import TextBook, language_of

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ContextMiddleware(BaseMiddleware):
    def __init__(self, textbook: TextBook, store: BotStore) -> None:
        self.textbook = textbook
        self.store = store
        self._languages: dict[int, str] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        language = language_of(user.language_code if user else None)
        if user is not None and self._languages.get(user.id) != language:
            # Reminders are sent with no message to read the language from: remember it.
            self.store.set_language(user.id, language)
            self._languages[user.id] = language
        data["texts"] = self.textbook.texts(language)
        return await handler(event, data)

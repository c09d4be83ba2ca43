"""Stand-ins for what cannot run inside a unit test: a Bot API that records what the bot sends."""

import itertools
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, MessageEntity, Update, User

from butler_bot import errors, handlers
from butler_bot.backends import Backends
from butler_bot.conversation import Conversations
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore

BOT_TOKEN = "42:fake-token-for-tests"
_update_ids = itertools.count(1)


class RecordingSession(BaseSession):
    """Answers every Bot API call at once and keeps it; `failures` are raised first, one per call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self.failures: list[Exception] = []
        self._message_ids = itertools.count(1)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> Any:
        self.calls.append(method)
        if self.failures:
            raise self.failures.pop(0)
        if type(method).__name__ == "SendMessage":
            chat = Chat(id=method.chat_id, type="private")
            return Message(message_id=next(self._message_ids), date=datetime.now(UTC), chat=chat, text=method.text)
        if type(method).__name__ == "GetMe":
            return User(id=42, is_bot=True, first_name="Butler", username="butler_test_bot")
        return True

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""

    def sent(self, chat_id: int | None = None) -> list[Any]:
        """The sendMessage calls, to `chat_id` if given."""
        return [
            call
            for call in self.calls
            if type(call).__name__ == "SendMessage" and (chat_id is None or call.chat_id == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [call.text for call in self.sent(chat_id)]

    def actions(self, chat_id: int) -> list[str]:
        return [
            call.action for call in self.calls if type(call).__name__ == "SendChatAction" and call.chat_id == chat_id
        ]


def release_routers() -> None:
    """Let the module-level routers join another dispatcher: aiogram attaches a router to one parent only."""
    for router in [*handlers.routers, errors.router]:
        if router.parent_router is not None:
            router.parent_router.sub_routers.remove(router)
            router._parent_router = None


def recording_bot() -> tuple[Bot, RecordingSession]:
    session = RecordingSession()
    return Bot(BOT_TOKEN, session=session), session


def text_update(
    user_id: int, text: str, *, chat_id: int | None = None, chat_type: str = "private", language: str = "en"
) -> Update:
    """What Telegram delivers when `user_id` writes `text` (in their private chat unless told otherwise)."""
    user = User(id=user_id, is_bot=False, first_name=f"User{user_id}", language_code=language)
    chat = Chat(id=chat_id if chat_id is not None else user_id, type=chat_type)
    # A Telegram client marks a leading /command as a bot_command entity.
    entities = [MessageEntity(type="bot_command", offset=0, length=len(text.split()[0]))] if text[:1] == "/" else None
    message = Message(
        message_id=next(_update_ids), date=datetime.now(UTC), chat=chat, from_user=user, text=text, entities=entities
    )
    return Update(update_id=next(_update_ids), message=message)


class PrebuiltBackends(Backends):
    """The bot's backends with conversations built by the test (stand-in model, real MCP server)."""

    def __init__(self, settings: BotSettings, store: BotStore, conversations: Conversations) -> None:
        super().__init__(settings, store)
        self.prebuilt = conversations

    async def _load(self) -> Conversations:
        return self.prebuilt

"""The model and tool clients, loaded after polling has started.

Importing `openai` and `mcp` costs seconds on top of aiogram's. Every dev hot reload would pay that before the
bot answers anything, so they are imported in a worker thread once the bot is up: /start and /help answer at
once, and a message that needs the model waits for the load (which is usually over by then).
"""

import asyncio
import importlib
import logging
from types import ModuleType
from typing import TYPE_CHECKING

from butler_bot.prompt import SystemPrompt
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import WatchedFile

if TYPE_CHECKING:
    from butler_bot.conversation import Conversations

log = logging.getLogger(__name__)


def import_conversation() -> ModuleType:
    return importlib.import_module("butler_bot.conversation")


class Backends:
    def __init__(self, settings: BotSettings, store: BotStore) -> None:
        self.settings = settings
        self.store = store
        self._loading: asyncio.Task[Conversations] | None = None

    def start_loading(self) -> None:
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="load-backends")

    async def _load(self) -> "Conversations":
        module = await asyncio.to_thread(import_conversation)
        # Imported, so this module's names resolve now.
        from butler_bot.llm import LlmClient
        from butler_bot.tools import McpTools

        conversations = module.Conversations(
            self.settings,
            self.store,
            SystemPrompt(WatchedFile(self.settings.system_prompt_file)),
            LlmClient(self.settings),
            McpTools(self.settings),
        )
        log.debug("model and tool clients ready")
        return conversations

    async def conversations(self) -> "Conversations":
        self.start_loading()
        assert self._loading is not None
        # shield: a cancelled message must not cancel the load the next one needs.
        return await asyncio.shield(self._loading)

    async def close(self) -> None:
        if self._loading is None:
            return
        if not self._loading.done():
            self._loading.cancel()
        try:
            conversations = await self._loading
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("the model and tool clients never loaded")
            return
        await conversations.close()

"""The bot's dispatcher polling the Bot API emulator in-process: real updates, as Telegram's JSON has them."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Dispatcher

from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook
from tests.butler_bot.fakes import release_routers
from tests.e2e.emulator import make_bot

STOP_TIMEOUT = 60.0


@asynccontextmanager
async def polling(settings: BotSettings) -> AsyncIterator[Dispatcher]:
    """Polling for the block; on leaving, polling stops (shutdown hooks included), then the clients close, as in
    `butler_bot.app.main`."""
    store = BotStore.open(settings.store_path, settings.history_turns)
    release_routers()
    backends = Backends(settings, store)
    dp = build_dispatcher(settings, store, TextBook(settings.texts_file), backends)
    bot = make_bot(settings.telegram_api_url, settings.telegram_bot_token.get_secret_value())
    task = asyncio.create_task(dp.start_polling(bot, polling_timeout=2, handle_signals=False))
    try:
        yield dp
    finally:
        await asyncio.wait_for(dp.stop_polling(), timeout=STOP_TIMEOUT)
        await asyncio.gather(task, return_exceptions=True)
        await backends.close()
        await bot.session.close()
        store.close()

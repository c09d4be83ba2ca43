"""The bot assembled: settings, Telegram session, store, middlewares, routers, background work, polling."""

import logging

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from butler_bot import errors, handlers
from butler_bot.backends import Backends
from butler_bot.commands import publish_commands
from butler_bot.health import start_health_server
from butler_bot.middlewares.access import AccessMiddleware
from butler_bot.middlewares.context import ContextMiddleware
from butler_bot.middlewares.in_flight import InFlightMiddleware
from butler_bot.pairing import Pairing
from butler_bot.reminders import ReminderDelivery
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.telegram import RetryAfterMiddleware, wait_for_bot_api
from butler_bot.texts import TextBook
from shared.logging import configure_logging
from shared.settings import load_settings
from shared.version import VERSION

log = logging.getLogger("butler_bot")


def build_dispatcher(settings: BotSettings, store: BotStore, textbook: TextBook, backends: Backends) -> Dispatcher:
    """Middlewares, routers and shared clients; no network yet (the benchmark and tests build it too)."""
    dp = Dispatcher()
    pairing = Pairing(settings.allowed_user_ids, store)
    # Access first: nothing else runs for a stranger.
    dp.update.outer_middleware(
        AccessMiddleware(pairing, settings.allow_group_chats, textbook, settings.refusal_cooldown_seconds)
    )
    dp.update.outer_middleware(ContextMiddleware(textbook, store))
    in_flight = InFlightMiddleware()
    dp.update.outer_middleware(in_flight)
    # Registered before main's hook that closes the clients: shutdown hooks run in the order they were added.
    dp.shutdown.register(in_flight.finish)
    dp.include_routers(*handlers.routers, errors.router)
    dp.workflow_data.update(settings=settings, store=store, backends=backends, pairing=pairing)
    return dp


async def main() -> None:
    settings = load_settings(BotSettings, "butler-bot")
    configure_logging(settings.log_level)

    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(RetryAfterMiddleware())
    bot = Bot(settings.telegram_bot_token.get_secret_value(), session=session)
    store = BotStore.open(settings.store_path, settings.history_turns)
    textbook = TextBook(settings.texts_file)
    backends = Backends(settings, store)
    reminders = ReminderDelivery(bot, settings, store, textbook, backends)
    dp = build_dispatcher(settings, store, textbook, backends)
    health_state = {"polling": False}

    @dp.startup()
    async def start_background_work() -> None:
        backends.start_loading()
        reminders.start()
        publish_commands(bot, textbook)
        health_state["polling"] = True

    @dp.shutdown()
    async def close_clients() -> None:
        health_state["polling"] = False
        await reminders.stop()
        await backends.close()
        store.close()

    checks = {"polling": lambda: health_state["polling"], "reminders": lambda: reminders.alive}
    health_runner = await start_health_server(settings.health_port, checks)
    try:
        dp.workflow_data["pairing"].start()
        me = await wait_for_bot_api(bot, settings.telegram_api_url)
        log.info("butler-bot %s polling as @%s via %s", VERSION, me.username, settings.telegram_api_url)
        await dp.start_polling(bot)
    finally:
        await health_runner.cleanup()
        await bot.session.close()

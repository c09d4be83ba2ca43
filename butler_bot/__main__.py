"""Entry point: `python -m butler_bot` starts long polling against TELEGRAM_API_URL."""

import asyncio
import logging

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from butler_bot import errors, handlers
from butler_bot.health import start_health_server
from butler_bot.llm import make_llm_client
from butler_bot.settings import BotSettings
from butler_bot.telegram import wait_for_bot_api
from shared.logging import configure_logging
from shared.settings import load_settings
from shared.version import VERSION

log = logging.getLogger("butler_bot")


async def main() -> None:
    settings = load_settings(BotSettings, "butler-bot")
    configure_logging(settings.log_level)

    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(settings.telegram_bot_token.get_secret_value(), session=session)
    dp = Dispatcher()
    dp.include_routers(*handlers.routers, errors.router)

    llm = make_llm_client(settings)
    health_state = {"polling": False}
    dp.workflow_data.update(settings=settings, llm=llm)

    @dp.startup()
    async def mark_ready() -> None:
        health_state["polling"] = True

    @dp.shutdown()
    async def close_clients() -> None:
        health_state["polling"] = False
        await llm.close()

    health_runner = await start_health_server(settings.health_port, health_state)
    try:
        me = await wait_for_bot_api(bot, settings.telegram_api_url)
        log.info("butler-bot %s polling as @%s via %s", VERSION, me.username, settings.telegram_api_url)
        await dp.start_polling(bot)
    finally:
        await health_runner.cleanup()
        await bot.session.close()


if __name__ == "__main__":
    asyncio.run(main())

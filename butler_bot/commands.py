"""The command menu Telegram shows next to the input field, in English and Russian (texts from config/)."""

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import BotCommand

from butler_bot.texts import DEFAULT_LANGUAGE, LANGUAGES, TextBook

log = logging.getLogger(__name__)

COMMANDS = ("tasks", "today", "briefing", "export", "tools", "reset", "help")

_background: set[asyncio.Task[None]] = set()


async def _publish(bot: Bot, textbook: TextBook) -> None:
    try:
        for language in LANGUAGES:
            texts = textbook.texts(language)
            commands = [BotCommand(command=name, description=texts(f"menu_{name}")) for name in COMMANDS]
            # English is the default menu; Russian clients get their own.
            await bot.set_my_commands(commands, language_code=None if language == DEFAULT_LANGUAGE else language)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.warning("could not publish the command menu: %s", exc)


def publish_commands(bot: Bot, textbook: TextBook) -> None:
    """Publish in the background: the menu is a nicety, start-up does not wait for it."""
    task = asyncio.create_task(_publish(bot, textbook), name="publish-commands")
    _background.add(task)
    task.add_done_callback(_background.discard)

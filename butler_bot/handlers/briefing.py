"""/briefing: show, set or stop the morning briefing, straight from the agenda tool, no model in between."""

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.briefing import AGENDA_TOOL, OFF, briefing_view, time_of_day
from butler_bot.handlers.tasks import answer_from_tool
from butler_bot.replies import send_text
from butler_bot.texts import Texts

router = Router(name="briefing")


@router.message(Command("briefing"))
async def briefing(message: Message, command: CommandObject, bot: Bot, backends: Backends, texts: Texts) -> None:
    """`/briefing` shows the setting, `/briefing 08:00` sets the time, `/briefing off` stops it."""
    wanted = (command.args or "").strip()
    arguments: dict[str, str] = {}
    if wanted.lower() == OFF:
        arguments["daily_at"] = OFF
    elif wanted:
        at = time_of_day(wanted)
        if at is None:
            await send_text(bot, message.chat.id, texts("briefing_bad_time", value=wanted))
            return
        arguments["daily_at"] = at
    await answer_from_tool(message, bot, backends, texts, AGENDA_TOOL, briefing_view, arguments=arguments)

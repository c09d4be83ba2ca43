"""/tasks and /today: straight from the tools, no model in between."""

import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.core import ToolsUnavailable
from butler_bot.replies import send_text
from butler_bot.texts import Texts
from butler_bot.views import agenda_view, tasks_view

log = logging.getLogger(__name__)

router = Router(name="tasks")


async def answer_from_tool(
    message: Message,
    bot: Bot,
    backends: Backends,
    texts: Texts,
    name: str,
    view: Callable[[dict[str, Any], Texts], str],
) -> None:
    """Call one tool as the user who wrote and send its result through `view`, or say the tools are down."""
    assert message.from_user is not None
    user_id = message.from_user.id
    conversations = await backends.conversations()
    try:
        result = await conversations.tools.call(user_id, name, {})
    except ToolsUnavailable as exc:
        log.warning("%s for user %s: tools unavailable: %s", name, user_id, exc)
        result = None
    if result is not None and (result.is_error or result.data is None):
        log.warning("%s for user %s failed: %s", name, user_id, result.text)
        result = None
    text = view(result.data, texts) if result is not None else texts("tools_unavailable")
    await send_text(bot, message.chat.id, text)


@router.message(Command("tasks"))
async def list_tasks(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    await answer_from_tool(message, bot, backends, texts, "tasks_list", tasks_view)


@router.message(Command("today"))
async def today(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    await answer_from_tool(message, bot, backends, texts, "agenda_today", agenda_view)

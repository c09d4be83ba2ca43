"""/tasks and /today: straight from the tools, no model in between."""

import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import InlineKeyboardMarkup, Message

from butler_bot.backends import Backends
from butler_bot.core import ToolsUnavailable
from butler_bot.keyboards import send_with_buttons, tasks_keyboard
from butler_bot.replies import send_text
from butler_bot.texts import Texts
from butler_bot.views import agenda_view, tasks_view
from shared.results import TaskList

log = logging.getLogger(__name__)

router = Router(name="tasks")


async def answer_from_tool(
    message: Message,
    bot: Bot,
    backends: Backends,
    texts: Texts,
    name: str,
    view: Callable[[dict[str, Any], Texts], str],
    buttons: Callable[[dict[str, Any], Texts], InlineKeyboardMarkup | None] = lambda data, texts: None,
    arguments: dict[str, Any] | None = None,
) -> None:
    """Call one tool as the user who wrote and send its result through `view` with `buttons` under it, or say the
    tools are down."""
    assert message.from_user is not None
    user_id = message.from_user.id
    conversations = await backends.conversations()
    try:
        result = await conversations.tools.call(user_id, name, arguments or {})
    except ToolsUnavailable as exc:
        log.warning("%s for user %s: tools unavailable: %s", name, user_id, exc)
        result = None
    if result is not None and (result.is_error or result.data is None):
        log.warning("%s for user %s failed: %s", name, user_id, result.text)
        result = None
    if result is None:
        await send_text(bot, message.chat.id, texts("tools_unavailable"))
        return
    await send_with_buttons(bot, message.chat.id, view(result.data, texts), buttons(result.data, texts))


def complete_buttons(data: dict[str, Any], texts: Texts) -> InlineKeyboardMarkup | None:
    return tasks_keyboard(TaskList.model_validate(data).tasks, texts)


@router.message(Command("tasks"))
async def list_tasks(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    await answer_from_tool(message, bot, backends, texts, "tasks_list", tasks_view, complete_buttons)


@router.message(Command("today"))
async def today(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    await answer_from_tool(message, bot, backends, texts, "agenda_today", agenda_view)

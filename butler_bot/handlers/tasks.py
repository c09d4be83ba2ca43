"""/tasks and /today: straight from the tools, no model in between."""

import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from butler_bot.backends import Backends, ToolsUnavailable
from butler_bot.replies import send_text
from butler_bot.texts import Texts
from butler_bot.views import agenda_view, tasks_view

log = logging.getLogger(__name__)

router = Router(name="tasks")


async def call_tool(backends: Backends, user_id: int, name: str) -> dict[str, Any] | None:
    """The tool's structured result, or None (logged) when the tools cannot answer."""
    conversations = await backends.conversations()
    try:
        result = await conversations.tools.call(user_id, name, {})
    except ToolsUnavailable as exc:
        log.warning("%s for user %s: tools unavailable: %s", name, user_id, exc)
        return None
    if result.is_error or result.data is None:
        log.warning("%s for user %s failed: %s", name, user_id, result.text)
        return None
    return result.data


@router.message(Command("tasks"))
async def list_tasks(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None
    data = await call_tool(backends, message.from_user.id, "tasks_list")
    text = tasks_view(data, texts) if data is not None else texts("tools_unavailable")
    await send_text(bot, message.chat.id, text)


@router.message(Command("today"))
async def today(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None
    data = await call_tool(backends, message.from_user.id, "agenda_today")
    text = agenda_view(data, texts) if data is not None else texts("tools_unavailable")
    await send_text(bot, message.chat.id, text)

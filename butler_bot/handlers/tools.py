"""/tools: what the butler can do, as the MCP server describes its tools."""

import logging

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.core import ToolsUnavailable
from butler_bot.replies import send_text
from butler_bot.texts import Texts
from butler_bot.views import tools_view

log = logging.getLogger(__name__)

router = Router(name="tools")


@router.message(Command("tools"))
async def list_tools(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None
    conversations = await backends.conversations()
    try:
        text = tools_view(await conversations.tools.list_tools(message.from_user.id), texts)
    except ToolsUnavailable as exc:
        log.warning("/tools for user %s: tools unavailable: %s", message.from_user.id, exc)
        text = texts("tools_unavailable")
    await send_text(bot, message.chat.id, text)

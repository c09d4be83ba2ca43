"""/export: the user's own tasks, notes and reminders as two files, Markdown to read and JSON for programs.

Straight from the MCP server's GET /internal/export (no model in between), which answers for the user named
in the request header only.
"""

import logging

import aiohttp
from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.chat_action import ChatActionSender
from pydantic import ValidationError

from butler_bot.internal_api import internal_session
from butler_bot.replies import send_text
from butler_bot.settings import BotSettings
from butler_bot.texts import Texts
from shared.results import Export

log = logging.getLogger(__name__)

router = Router(name="export")

EXPORT_TIMEOUT = 30.0


async def fetch_export(settings: BotSettings, user_id: int) -> Export:
    async with (
        internal_session(settings, EXPORT_TIMEOUT, user_id) as http,
        http.get("/internal/export") as response,
    ):
        response.raise_for_status()
        return Export.model_validate_json(await response.read())


def export_markdown(export: Export, texts: Texts) -> str:
    lines = [f"# {texts('export_md_title', when=export.exported_at, timezone=export.timezone)}", ""]
    lines += [f"## {texts('export_md_tasks')}", ""]
    for task in export.tasks:
        if task.status == "done":
            mark, when = "x", texts("export_md_done", when=task.completed_at)
        else:
            mark, when = " ", texts("due", when=task.due) if task.due else ""
        lines.append(f"- [{mark}] {task.title}" + (f" ({when})" if when else ""))
        lines += [f"  {line}" for line in (task.notes or "").splitlines()]
    lines += [texts("export_md_none")] if not export.tasks else []
    lines += ["", f"## {texts('export_md_notes')}", ""]
    for note in export.notes:
        lines += [f"### {note.title or note.text.splitlines()[0][:60]} ({note.updated_at})", "", note.text, ""]
    lines += [texts("export_md_none")] if not export.notes else []
    lines += ["", f"## {texts('export_md_reminders')}", ""]
    lines += [f"- {reminder.due}: {reminder.text} ({reminder.status})" for reminder in export.reminders]
    lines += [texts("export_md_none")] if not export.reminders else []
    return "\n".join(lines).rstrip() + "\n"


@router.message(Command("export"))
async def export_data(message: Message, bot: Bot, settings: BotSettings, texts: Texts) -> None:
    assert message.from_user is not None
    user_id = message.from_user.id
    try:
        export = await fetch_export(settings, user_id)
    except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
        log.warning("export for user %s: the MCP server gave no usable answer: %r", user_id, exc)
        await send_text(bot, message.chat.id, texts("tools_unavailable"))
        return
    day = export.exported_at[:10]
    caption = texts("export_caption", tasks=len(export.tasks), notes=len(export.notes), reminders=len(export.reminders))
    async with ChatActionSender.upload_document(bot=bot, chat_id=message.chat.id):
        markdown = export_markdown(export, texts).encode()
        await bot.send_document(
            message.chat.id, BufferedInputFile(markdown, filename=f"butler-export-{day}.md"), caption=caption
        )
        json_file = BufferedInputFile(export.model_dump_json(indent=2).encode(), filename=f"butler-export-{day}.json")
        await bot.send_document(message.chat.id, json_file)

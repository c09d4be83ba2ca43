"""GET /internal/export: everything the server keeps for one user, for the bot's /export. Not an MCP tool.

Behind the same bearer token as /mcp. The user is the one named in the `X-Telegram-User-Id` header, as on
every MCP call; the answer holds that user's rows only.

    200: shared.results.Export, the user's tasks (open and done), notes and reminders (every status).
    422: no header, or not a Telegram id.
"""

from typing import Annotated

from fastapi import APIRouter, Header
from sqlalchemy import select

from mcp_server import models
from mcp_server.db import Database
from mcp_server.models import utcnow
from mcp_server.times import local_iso
from mcp_server.tools.notes import note_view
from mcp_server.tools.reminders import reminder_view
from mcp_server.tools.tasks import task_view
from mcp_server.users import MAX_TELEGRAM_ID, UserTimezones
from shared.results import Export

TelegramUser = Annotated[
    int, Header(alias="X-Telegram-User-Id", gt=0, le=MAX_TELEGRAM_ID, description="The user whose data it is")
]


def export_router(db: Database, default_timezone: str) -> APIRouter:
    router = APIRouter(prefix="/internal")
    # Uncached: the tools' cache is their own, and a timezone set a moment ago must show here.
    timezones = UserTimezones(default_timezone, ttl_seconds=0)

    @router.get("/export")
    async def export(user_id: TelegramUser) -> Export:
        now = utcnow()
        async with db.session() as session:
            zone = await timezones.get(session, user_id)
            tasks = await session.scalars(
                select(models.Task).where(models.Task.user_id == user_id).order_by(models.Task.id)
            )
            notes = await session.scalars(
                select(models.Note).where(models.Note.user_id == user_id).order_by(models.Note.id)
            )
            reminders = await session.scalars(
                select(models.Reminder)
                .where(models.Reminder.user_id == user_id)
                .order_by(models.Reminder.due_at, models.Reminder.id)
            )
            return Export(
                user_id=user_id,
                exported_at=local_iso(now, zone),
                timezone=zone.key,
                tasks=[task_view(task, zone, now) for task in tasks],
                notes=[note_view(note, zone) for note in notes],
                reminders=[reminder_view(reminder, zone) for reminder in reminders],
            )

    return router

"""Reminder tools: a message the bot sends the user at a set time (delivery itself is in mcp_server.delivery)."""

from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from sqlalchemy import Select, select

from mcp_server import models
from mcp_server.models import utcnow
from mcp_server.times import local_iso, parse_local_time
from mcp_server.tools.common import RowId, TimeText, ToolDeps, check_room, limit_param, owned_row, text_param
from mcp_server.users import UserId
from shared.results import Reminder, ReminderList


def reminder_view(reminder: models.Reminder, zone: ZoneInfo) -> Reminder:
    return Reminder(
        id=reminder.id,
        text=reminder.text,
        due=local_iso(reminder.due_at, zone),
        status=reminder.status,
    )


def pending_reminders(user_id: int) -> Select[tuple[models.Reminder]]:
    return (
        select(models.Reminder)
        .where(models.Reminder.user_id == user_id, models.Reminder.status == "pending")
        .order_by(models.Reminder.due_at, models.Reminder.id)
    )


def register(mcp: MCPServer, deps: ToolDeps) -> None:
    limits = deps.limits
    horizon = timedelta(days=limits.reminder_horizon_days)
    text_type = text_param(limits.max_text_length)
    limit_type = limit_param(limits)
    max_minutes = limits.reminder_horizon_days * 24 * 60

    @mcp.tool(title="Set a reminder")
    async def reminders_create(
        user_id: UserId,
        text: text_type,
        at: Annotated[TimeText | None, Field(description="Local ISO date-time")] = None,
        after_minutes: Annotated[int | None, Field(ge=1, le=max_minutes)] = None,
    ) -> Reminder:
        """Remind the user at a local time, or after some minutes."""
        if (at is None) == (after_minutes is None):
            raise ToolError("Give exactly one of at (a local time) or after_minutes (a delay).")
        now = utcnow()
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            if after_minutes is not None:
                due_at = now + timedelta(minutes=after_minutes)
            else:
                due_at, whole_day = parse_local_time(at or "", zone)
                if whole_day:
                    raise ToolError(f"{at!r} is a date without a time of day: give 'YYYY-MM-DDTHH:MM'.")
                if due_at <= now:
                    raise ToolError(
                        f"{at!r} has already passed: it is now {local_iso(now, zone)} ({zone.key}). "
                        "Give a later time, or after_minutes."
                    )
                if due_at - now > horizon:
                    raise ToolError(f"Reminders can be set at most {limits.reminder_horizon_days} days ahead.")
            await check_room(session, models.Reminder, user_id, limits, models.Reminder.status == "pending")
            reminder = models.Reminder(user_id=user_id, text=text, due_at=due_at, status="pending", attempts=0)
            session.add(reminder)
            await session.flush()
            return reminder_view(reminder, zone)

    @mcp.tool(title="List reminders", annotations=ToolAnnotations(read_only_hint=True))
    async def reminders_list(user_id: UserId, limit: limit_type = limits.list_default) -> ReminderList:
        """List the user's pending reminders, soonest first."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            rows = (await session.scalars(pending_reminders(user_id).limit(limit + 1))).all()
        return ReminderList(
            reminders=[reminder_view(row, zone) for row in rows[:limit]], more=len(rows) > limit, timezone=zone.key
        )

    @mcp.tool(title="Cancel a reminder", annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    async def reminders_cancel(user_id: UserId, reminder_id: RowId) -> Reminder:
        """Cancel a pending reminder."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            reminder = await owned_row(session, models.Reminder, reminder_id, user_id)
            if reminder.status == "delivered":
                raise ToolError(f"Reminder {reminder_id} was already sent to the user; there is nothing to cancel.")
            reminder.status = "cancelled"
            return reminder_view(reminder, zone)

"""Reminder tools: a message the bot sends the user at a set time (delivery itself is in mcp_server.delivery).

A recurring reminder (`every`, an RFC 5545 RRULE) is a series in mcp_server.series; reminders_cancel skips one
occurrence of it, or stops, pauses or resumes the whole series.
"""

from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, StringConstraints
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_server import models
from mcp_server import series as recurrence
from mcp_server.models import utcnow
from mcp_server.times import local_iso, parse_local_time
from mcp_server.tools.common import RowId, TimeText, ToolDeps, check_room, limit_param, owned_row, text_param
from mcp_server.users import UserId
from shared.results import Reminder, ReminderList

RuleText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SeriesAction = Literal["stop", "pause", "resume"]
SERIES_ACTIONS = {
    "stop": recurrence.cancel_series,
    "pause": recurrence.pause_series,
    "resume": recurrence.resume_series,
}


def reminder_view(reminder: models.Reminder, zone: ZoneInfo) -> Reminder:
    return Reminder(
        id=reminder.id,
        text=reminder.text,
        due=local_iso(reminder.due_at, zone),
        status=reminder.status,
        every=reminder.series.rule if reminder.series else None,
        series_id=reminder.series_id,
    )


def pending_reminders(user_id: int, statuses: tuple[str, ...] = ("pending",)) -> Select[tuple[models.Reminder]]:
    return (
        select(models.Reminder)
        .where(models.Reminder.user_id == user_id, models.Reminder.status.in_(statuses))
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
        every: Annotated[RuleText | None, Field(description="RRULE, e.g. FREQ=DAILY;BYHOUR=9;BYMINUTE=0")] = None,
    ) -> Reminder:
        """Remind the user at a local time, or after some minutes; `every` repeats it."""
        if every is None and (at is None) == (after_minutes is None):
            raise ToolError("Give exactly one of at (a local time) or after_minutes (a delay).")
        if at is not None and after_minutes is not None:
            raise ToolError("Give at (the first local time) or after_minutes, not both.")
        now = utcnow()
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            due_at: datetime | None = None
            if after_minutes is not None:
                due_at = now + timedelta(minutes=after_minutes)
            elif at is not None:
                due_at, whole_day = parse_local_time(at, zone)
                if whole_day:
                    raise ToolError(f"{at!r} is a date without a time of day: give 'YYYY-MM-DDTHH:MM'.")
                # A series may start in the past: its first occurrence is the next one after now.
                if due_at <= now and every is None:
                    raise ToolError(
                        f"{at!r} has already passed: it is now {local_iso(now, zone)} ({zone.key}). "
                        "Give a later time, or after_minutes."
                    )
            if due_at is not None and due_at - now > horizon:
                raise ToolError(f"Reminders can be set at most {limits.reminder_horizon_days} days ahead.")
            await check_room(session, models.Reminder, user_id, limits, models.Reminder.status == "pending")
            if every is not None:
                start = recurrence.as_local(due_at, zone) if due_at else None
                reminder = await recurrence.start_series(
                    session, user_id=user_id, text=text, rule=every, kind="reminder", zone=zone, start=start
                )
                return reminder_view(reminder, zone)
            reminder = models.Reminder(user_id=user_id, text=text, due_at=due_at, status="pending", attempts=0)
            session.add(reminder)
            await session.flush()
            return reminder_view(reminder, zone)

    @mcp.tool(title="List reminders", annotations=ToolAnnotations(read_only_hint=True))
    async def reminders_list(user_id: UserId, limit: limit_type = limits.list_default) -> ReminderList:
        """List the user's pending and paused reminders, soonest first."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            rows = (await session.scalars(pending_reminders(user_id, recurrence.AHEAD).limit(limit + 1))).all()
        return ReminderList(
            reminders=[reminder_view(row, zone) for row in rows[:limit]], more=len(rows) > limit, timezone=zone.key
        )

    @mcp.tool(title="Cancel a reminder", annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    async def reminders_cancel(
        user_id: UserId,
        reminder_id: RowId,
        series: SeriesAction | None = None,
    ) -> Reminder:
        """Cancel a reminder (of a series: skip once); `series` acts on its whole series."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            reminder = await owned_row(session, models.Reminder, reminder_id, user_id)
            if series is not None:
                return reminder_view(await act_on_series(session, reminder, series), zone)
            if reminder.status in ("delivered", "done"):
                raise ToolError(f"Reminder {reminder_id} was already sent to the user; there is nothing to cancel.")
            if reminder.status in recurrence.AHEAD:
                reminder.status, reminder.lease_until = ("skipped" if reminder.series else "cancelled"), None
                # A skipped occurrence makes way for the next one.
                await recurrence.schedule_next(session, reminder)
            elif reminder.status == "failed":
                reminder.status = "cancelled"
            return reminder_view(reminder, zone)


async def act_on_series(session: AsyncSession, reminder: models.Reminder, action: SeriesAction) -> models.Reminder:
    """Stop, pause or resume the reminder's series; returns its occurrence still ahead, if any, else the reminder."""
    if reminder.series is None:
        raise ToolError(f"Reminder {reminder.id} does not repeat: cancel it without series.")
    if reminder.series.status == "cancelled" and action != "stop":
        raise ToolError(f"The series of reminder {reminder.id} was stopped: set a new recurring reminder instead.")
    await SERIES_ACTIONS[action](session, reminder.series)
    await session.flush()
    ahead = await session.scalar(
        select(models.Reminder)
        .where(models.Reminder.series_id == reminder.series.id, models.Reminder.status.in_(recurrence.AHEAD))
        .order_by(models.Reminder.due_at)
        .limit(1)
    )
    return ahead or reminder

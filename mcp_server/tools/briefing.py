"""The morning briefing: the user's agenda sent every day at a local time, one briefing per user.

It is a daily reminder series of kind "briefing" (mcp_server.series); the bot writes each occurrence from
agenda_today when it falls due, so the series' text is only what lists show for it. agenda_today's `daily_at`
sets, moves or stops it: one parameter on a tool the model already has costs the prompt less than a tool of
its own.
"""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from mcp.server.mcpserver.exceptions import ToolError
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_server import models
from mcp_server.series import cancel_series, start_series

BRIEFING_TEXT = "Daily agenda"
OFF = "off"


def daily_rule(at: time) -> str:
    return f"FREQ=DAILY;BYHOUR={at.hour};BYMINUTE={at.minute}"


def rule_time(rule: str) -> str:
    """'08:30' from the daily rule `daily_rule` writes."""
    parts = dict(part.split("=", 1) for part in rule.split(";"))
    return f"{int(parts['BYHOUR']):02d}:{int(parts['BYMINUTE']):02d}"


def time_of_day(text: str) -> time:
    """'08:30' (or '8:30') as a time of day, or a tool error the LLM can act on."""
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ToolError(f"Cannot read daily_at {text!r}: give 'HH:MM' (24-hour, local), or 'off'.") from None


async def current_briefing(session: AsyncSession, user_id: int) -> models.ReminderSeries | None:
    return await session.scalar(
        select(models.ReminderSeries).where(
            models.ReminderSeries.user_id == user_id,
            models.ReminderSeries.kind == "briefing",
            models.ReminderSeries.status != "cancelled",
        )
    )


def not_a_briefing(user_id: int) -> ColumnElement[bool]:
    """For reminder queries: the briefing is the agenda itself (its time is `daily_at`), not an item in it."""
    briefings = select(models.ReminderSeries.id).where(
        models.ReminderSeries.user_id == user_id, models.ReminderSeries.kind == "briefing"
    )
    return or_(models.Reminder.series_id.is_(None), models.Reminder.series_id.not_in(briefings))


async def briefing_time(session: AsyncSession, user_id: int) -> str | None:
    """The user's daily briefing time, 'HH:MM' local; None when it is off."""
    series = await current_briefing(session, user_id)
    return rule_time(series.rule) if series is not None else None


async def set_briefing(session: AsyncSession, user_id: int, daily_at: str, zone: ZoneInfo) -> None:
    """Send the agenda every day at `daily_at` ('HH:MM' local), or stop it ('off')."""
    wanted = None if daily_at.strip().lower() == OFF else time_of_day(daily_at.strip())
    # One briefing per user: a new time replaces the old series and what it had still to send.
    if (series := await current_briefing(session, user_id)) is not None:
        await cancel_series(session, series)
    if wanted is not None:
        await start_series(
            session, user_id=user_id, text=BRIEFING_TEXT, rule=daily_rule(wanted), kind="briefing", zone=zone
        )

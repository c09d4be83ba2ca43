"""Recurring reminders: an RFC 5545 rule (python-dateutil's rrule) whose occurrences are ordinary reminders.

The rule runs on naive wall-clock time in the user's zone, so 09:00 stays 09:00 across DST. Only when an
occurrence becomes an instant is the zone applied: a time the clocks skip moves forward by the gap, and an
ambiguous one takes its first instant (zoneinfo's fold=0). A series has one pending occurrence; the next one is
made in the transaction that ends the current one (delivered, failed or skipped), so a series never stops
silently.
"""

import asyncio
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from mcp.server.mcpserver.exceptions import ToolError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_server import models
from mcp_server.models import utcnow

# dateutil looks for an occurrence period by period up to the year 9999: for one that never comes (every
# February 30th) that takes seconds of CPU, so it runs in a thread, and one not found in time counts as none.
SEARCH_SECONDS = 3.0
_searches = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rrule-search")
MIN_GAP = timedelta(minutes=1)
# The gaps checked for MIN_GAP: rules repeat, so the first ones show any gap that ever gets shorter.
GAPS_CHECKED = 200
# Occurrence statuses that still lie ahead: a series with one of them needs no new one.
AHEAD = ("pending", "paused")
log = logging.getLogger(__name__)

RULE_HINT = "Write an RFC 5545 RRULE such as 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0'."


def parse_rule(text: str, start: datetime) -> rrule:
    """The rule anchored at `start` (naive local), or a tool error saying what to write instead."""
    body = text.strip().removeprefix("RRULE:")
    if re.search(r"DTSTART|[\n:]", body, re.IGNORECASE):
        raise ToolError(f"Give the rule alone, without DTSTART or other lines; the first time goes in at. {RULE_HINT}")
    if re.search(r"UNTIL=[0-9T]+Z", body, re.IGNORECASE):
        raise ToolError("Write UNTIL in the user's local time without a trailing Z, e.g. UNTIL=20271231T235900.")
    try:
        rule = rrulestr(body, dtstart=start)
    except (ValueError, TypeError) as exc:
        raise ToolError(f"Cannot read the rule {text!r} ({exc}). {RULE_HINT}") from None
    if not isinstance(rule, rrule):
        raise ToolError(f"Give one RRULE, not a set. {RULE_HINT}")
    return rule


async def next_occurrence(rule: rrule, after: datetime, *, inc: bool = False) -> datetime | None:
    """The rule's first occurrence after `after` (naive local), or None; a search that runs long counts as none."""
    future = asyncio.wrap_future(_searches.submit(rule.after, after, inc))
    try:
        return await asyncio.wait_for(future, SEARCH_SECONDS)
    except TimeoutError:
        log.warning("no occurrence of %s found within %s s; taken as none", rule, SEARCH_SECONDS)
        return None


def as_instant(local: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a skipped wall-clock time maps past the gap, an ambiguous one to its first instant.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def as_local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def check_gaps(rule: rrule, first: datetime, text: str) -> None:
    for earlier, later in pairwise(rule.xafter(first, count=GAPS_CHECKED + 1, inc=True)):
        if later - earlier < MIN_GAP:
            raise ToolError(
                f"The rule {text!r} fires more often than once a minute ({earlier:%H:%M:%S} then {later:%H:%M:%S}): "
                "give a rule with at least a minute between reminders."
            )


async def series_zone(session: AsyncSession, series: models.ReminderSeries) -> ZoneInfo:
    """The user's timezone as it is now (they may have moved since), else the one the series was made in."""
    name = await session.scalar(select(models.User.timezone).where(models.User.user_id == series.user_id))
    return ZoneInfo(name or series.timezone)


async def start_series(
    session: AsyncSession,
    *,
    user_id: int,
    text: str,
    rule: str,
    kind: str,
    zone: ZoneInfo,
    start: datetime | None = None,
) -> models.Reminder:
    """Store a series and its first occurrence (at or after `start`, naive local; default now), and return that.

    A rule that never occurs again, or fires more often than once a minute, is refused with a tool error.
    """
    now_local = as_local(utcnow(), zone)
    anchor = (start or now_local).replace(second=0, microsecond=0)
    parsed = parse_rule(rule, anchor)
    first = await next_occurrence(parsed, max(anchor, now_local), inc=start is not None and anchor > now_local)
    if first is None:
        raise ToolError(
            f"The rule {rule!r} never occurs after {max(anchor, now_local):%Y-%m-%d %H:%M} ({zone.key}): "
            f"check COUNT, UNTIL and the BY... parts. {RULE_HINT}"
        )
    check_gaps(parsed, first, rule)
    series = models.ReminderSeries(
        user_id=user_id,
        text=text,
        rule=rule.strip().removeprefix("RRULE:"),
        start=anchor,
        timezone=zone.key,
        kind=kind,
        status="active",
    )
    session.add(series)
    return await add_occurrence(session, series, first, zone)


async def add_occurrence(
    session: AsyncSession, series: models.ReminderSeries, local: datetime, zone: ZoneInfo
) -> models.Reminder:
    reminder = models.Reminder(
        user_id=series.user_id,
        text=series.text,
        due_at=as_instant(local, zone),
        occurrence=local,
        status="pending",
        attempts=0,
    )
    reminder.series = series
    session.add(reminder)
    await session.flush()
    return reminder


async def schedule_next(session: AsyncSession, reminder: models.Reminder) -> models.Reminder | None:
    """After `reminder` ends (delivered, failed, skipped), add its series' next occurrence and return it.

    None for a one-off reminder, a paused or cancelled series, an exhausted rule (COUNT, UNTIL), or a series
    that already has an occurrence ahead (e.g. a snoozed occurrence delivered after the next was made).
    """
    series = reminder.series
    if series is None or series.status != "active" or reminder.status in AHEAD:
        return None
    ahead = await session.scalar(
        select(models.Reminder.id).where(
            models.Reminder.series_id == series.id,
            models.Reminder.id != reminder.id,
            models.Reminder.status.in_(AHEAD),
        )
    )
    if ahead is not None:
        return None
    zone = await series_zone(session, series)
    # After now as well: a series the bot catches up on after downtime sends the missed time once, not each one.
    after = max(reminder.occurrence or series.start, as_local(utcnow(), zone))
    following = await next_occurrence(parse_rule(series.rule, series.start), after)
    if following is None:
        return None
    if "COUNT=" not in series.rule.upper():
        # Without COUNT the rule from any occurrence on is the same series; dateutil then iterates from here.
        series.start = following
    return await add_occurrence(session, series, following, zone)


async def occurrences(
    session: AsyncSession, series: models.ReminderSeries, *statuses: str
) -> Sequence[models.Reminder]:
    return (
        await session.scalars(
            select(models.Reminder)
            .where(models.Reminder.series_id == series.id, models.Reminder.status.in_(statuses))
            .order_by(models.Reminder.due_at, models.Reminder.id)
        )
    ).all()


async def cancel_series(session: AsyncSession, series: models.ReminderSeries) -> None:
    """Stop the series for good: its occurrences still ahead are cancelled."""
    series.status = "cancelled"
    for reminder in await occurrences(session, series, *AHEAD):
        reminder.status, reminder.lease_until = "cancelled", None


async def pause_series(session: AsyncSession, series: models.ReminderSeries) -> None:
    """Hold the series: its pending occurrences wait as paused, and none is sent or made until it resumes."""
    if series.status == "active":
        series.status = "paused"
        for reminder in await occurrences(session, series, "pending"):
            reminder.status, reminder.lease_until = "paused", None


async def resume_series(session: AsyncSession, series: models.ReminderSeries) -> None:
    """Go on with a paused series: a paused occurrence still ahead is pending again, a past one skipped."""
    if series.status != "paused":
        return
    series.status = "active"
    now = utcnow()
    for reminder in await occurrences(session, series, "paused"):
        reminder.status = "pending" if reminder.due_at > now else "skipped"
    latest = await session.scalar(
        select(models.Reminder)
        .where(models.Reminder.series_id == series.id)
        .order_by(models.Reminder.due_at.desc(), models.Reminder.id.desc())
        .limit(1)
    )
    if latest is not None:
        await schedule_next(session, latest)


async def follow_timezone(session: AsyncSession, user_id: int, old: ZoneInfo, new: ZoneInfo) -> None:
    """After the user moved: their series' coming occurrences keep their wall-clock time in the new zone.

    A snoozed occurrence keeps its instant. One whose time has passed in the new zone moves to the next time.
    """
    rows = await session.scalars(
        select(models.Reminder).where(
            models.Reminder.user_id == user_id,
            models.Reminder.status.in_(AHEAD),
            models.Reminder.occurrence.is_not(None),
        )
    )
    now_local = as_local(utcnow(), new)
    for reminder in rows.all():
        series = reminder.series
        if series is None or reminder.occurrence is None or reminder.due_at != as_instant(reminder.occurrence, old):
            continue
        local: datetime | None = reminder.occurrence
        if local <= now_local:
            local = await next_occurrence(parse_rule(series.rule, series.start), now_local)
        if local is not None:
            reminder.occurrence, reminder.due_at = local, as_instant(local, new)

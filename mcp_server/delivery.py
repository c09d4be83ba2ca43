"""Reminder delivery for the bot: plain JSON endpoints, not MCP tools, so the LLM never sees them.

They sit behind the same bearer token as /mcp (`Authorization: Bearer <MCP_AUTH_TOKEN>`; 401 without it).
The bodies and answers are the models in shared.results, which the bot validates with.

POST /internal/reminders/claim
    Body (optional): ClaimRequest {"lease_seconds": 60, "limit": 20}, bounded by delivery.max_lease_seconds
    and delivery.max_claim; 422 for a malformed body.
    200: a list of DueReminder, possibly empty. Claims pending reminders whose time has come and leases them:
    two concurrent claimers never get the same one. A reminder not reported on before its lease ends is
    claimable again, so delivery is at least once; the bot dedupes by `delivery_key`. Each claim counts as an
    attempt, and the least-tried come first, so a reminder that keeps failing never crowds out the others.
    One still unreported after delivery.max_attempts claims is marked failed instead (the bot died on it).

POST /internal/reminders/{delivery_key}/ack     sent: the reminder is delivered and never claimed again.
POST /internal/reminders/{delivery_key}/fail    given up, body FailureReport {"reason": "..."}: failed.
POST /internal/reminders/{delivery_key}/retry   worth another try: claimable again after a wait that doubles
                                                with each attempt, up to delivery.retry_max_seconds.
    200: DeliveryStatus {"id": 7, "status": "delivered"}, the status after the report; repeating a report is
    harmless. A reminder the user cancelled meanwhile stays cancelled. 404 for an unknown key (the database
    was reset since the claim). An occurrence of a series that ends here (delivered, failed, or given up on by
    a claim) gets its successor in the same transaction (mcp_server.series.schedule_next).

The buttons under a delivered reminder, pressed by its user (body ReminderPress {"user_id", "reminder_id"}):
POST /internal/reminders/{delivery_key}/done    Done: the reminder is done.
POST /internal/reminders/{delivery_key}/snooze  body SnoozeRequest {..., "snooze": "10m" | "1h" | "tomorrow"}:
                                                the same reminder is due again (10 min or 1 h from now, or
                                                tomorrow at the same local time), pending, with a new
                                                delivery_key so the bot sends it again.
    200: PressResult {"id", "status", "changed", "due_local"}. changed is false for a stale button: the
    reminder is done, cancelled or skipped, or its key changed since (it was snoozed, maybe re-sent). 404
    when neither the key nor the reminder_id names a reminder of that user.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path
from pydantic import Field
from sqlalchemy import and_, or_, select, update

from mcp_server.db import Database
from mcp_server.models import Reminder, ReminderSeries, User, utcnow
from mcp_server.series import schedule_next
from mcp_server.settings import DeliverySettings
from mcp_server.times import local_iso
from shared.results import (
    ClaimRequest,
    DeliveryStatus,
    DueReminder,
    FailureReport,
    PressResult,
    ReminderPress,
    Snooze,
    SnoozeRequest,
)

log = logging.getLogger(__name__)

# The wait after a first failed attempt; it doubles with each further one.
FIRST_RETRY_SECONDS = 30

DeliveryKey = Annotated[UUID, Path(description="The reminder's delivery_key from the claim")]


def retry_delay(attempts: int, settings: DeliverySettings) -> timedelta:
    # attempts <= max_attempts (at most 30), so the power stays small.
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), settings.retry_max_seconds))


async def claim_due_reminders(
    db: Database,
    *,
    now: datetime,
    lease_seconds: int,
    limit: int,
    settings: DeliverySettings,
    default_timezone: str,
) -> list[DueReminder]:
    claimable = and_(
        Reminder.status == "pending",
        Reminder.due_at <= now,
        or_(Reminder.lease_until.is_(None), Reminder.lease_until <= now),
    )
    abandoned = (
        update(Reminder)
        .where(claimable, Reminder.attempts >= settings.max_attempts)
        .values(status="failed", lease_until=None, last_error=f"no report after {settings.max_attempts} claims")
        .returning(Reminder.id, Reminder.user_id, Reminder.series_id)
        .execution_options(synchronize_session=False)
    )
    # SKIP LOCKED: on PostgreSQL a second claimer takes the next rows instead of waiting; SQLite serialises writers.
    due_ids = (
        select(Reminder.id)
        .where(claimable)
        .order_by(Reminder.attempts, Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # `claimable` again in the outer WHERE: a row another claimer leased meanwhile no longer qualifies.
    lease = (
        update(Reminder)
        .where(Reminder.id.in_(due_ids.scalar_subquery()), claimable)
        .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=Reminder.attempts + 1)
        .returning(
            Reminder.id,
            Reminder.delivery_key,
            Reminder.user_id,
            Reminder.text,
            Reminder.due_at,
            Reminder.attempts,
            Reminder.series_id,
        )
        .execution_options(synchronize_session=False)
    )
    async with db.session() as session:
        for row in (await session.execute(abandoned)).all():
            log.warning(
                "reminder %s of user %s failed: the bot claimed it %s times and never reported back",
                row.id,
                row.user_id,
                settings.max_attempts,
            )
            if row.series_id is not None:
                await schedule_next(session, await session.get_one(Reminder, row.id))
        claimed = (await session.execute(lease)).all()
        user_ids = {row.user_id for row in claimed}
        zones = dict(
            (await session.execute(select(User.user_id, User.timezone).where(User.user_id.in_(user_ids)))).all()
        )
        series_ids = {row.series_id for row in claimed} - {None}
        kinds = dict(
            (
                await session.execute(
                    select(ReminderSeries.id, ReminderSeries.kind).where(ReminderSeries.id.in_(series_ids))
                )
            ).all()
        )
    late_after = timedelta(seconds=settings.late_after_seconds)
    result = []
    for row in sorted(claimed, key=lambda row: (row.attempts, row.due_at, row.id)):
        zone = ZoneInfo(zones.get(row.user_id, default_timezone))
        result.append(
            DueReminder(
                id=row.id,
                delivery_key=row.delivery_key,
                user_id=row.user_id,
                text=row.text,
                due_at=row.due_at.isoformat(timespec="seconds"),
                due_at_local=local_iso(row.due_at, zone),
                timezone=zone.key,
                late=now - row.due_at > late_after,
                attempt=row.attempts,
                final_attempt=row.attempts >= settings.max_attempts,
                kind=kinds.get(row.series_id, "reminder"),
            )
        )
    return result


async def report_on_reminder(
    db: Database, delivery_key: UUID, change: Callable[[Reminder], None]
) -> DeliveryStatus | None:
    """Apply `change` to the reminder with that key; None when no reminder has it.

    When the change ends a pending occurrence of a series, its next occurrence is made in the same transaction.
    """
    async with db.session() as session:
        # Locked: a concurrent claim that gives up on it must not end it (and schedule the next) a second time.
        found = select(Reminder).where(Reminder.delivery_key == delivery_key).with_for_update(of=Reminder)
        reminder = await session.scalar(found)
        if reminder is None:
            return None
        before = reminder.status
        change(reminder)
        if before == "pending" and reminder.status != "pending":
            await schedule_next(session, reminder)
        return DeliveryStatus(id=reminder.id, status=reminder.status)


def mark_delivered(reminder: Reminder) -> None:
    # A failed one too: the bot may report a success after the server gave up waiting for it.
    if reminder.status in ("pending", "failed"):
        reminder.status, reminder.delivered_at, reminder.lease_until = "delivered", utcnow(), None


# A button acts on a reminder in these; in the others (done, cancelled, skipped) it is stale. Pending too: the
# message was sent, but the bot's ack has not arrived yet.
PRESSABLE = frozenset({"pending", "delivered", "failed"})


def snoozed_until(snooze: Snooze, due_at: datetime, now: datetime, zone: ZoneInfo) -> datetime:
    if snooze == "10m":
        return now + timedelta(minutes=10)
    if snooze == "1h":
        return now + timedelta(hours=1)
    # Wall-clock arithmetic in the user's zone: 09:00 stays 09:00 across a DST change.
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, due_at.astimezone(zone).time(), tzinfo=zone).astimezone(UTC)


def snooze_to(reminder: Reminder, due_at: datetime) -> None:
    # A new key: the bot remembers the old one as sent and would never send the reminder again under it.
    reminder.due_at, reminder.delivery_key = due_at, uuid.uuid4()
    reminder.status, reminder.attempts, reminder.lease_until = "pending", 0, None
    reminder.delivered_at, reminder.last_error = None, None


def mark_done(reminder: Reminder, zone: ZoneInfo) -> None:
    reminder.status, reminder.lease_until = "done", None


async def press_button(
    db: Database,
    delivery_key: UUID,
    press: ReminderPress,
    default_timezone: str,
    change: Callable[[Reminder, ZoneInfo], None],
) -> PressResult | None:
    """Apply what `change` decides to the pressed reminder, unless the button is stale; None when it names none."""
    async with db.session() as session:
        reminder = await session.scalar(select(Reminder).where(Reminder.delivery_key == delivery_key))
        current = reminder is not None
        if reminder is None:
            reminder = await session.get(Reminder, press.reminder_id)
        if reminder is None or reminder.user_id != press.user_id:
            return None
        timezone = await session.scalar(select(User.timezone).where(User.user_id == press.user_id))
        zone = ZoneInfo(timezone or default_timezone)
        changed = current and reminder.status in PRESSABLE
        if changed:
            before = reminder.status
            change(reminder, zone)
            if before == "pending" and reminder.status != "pending":
                # Done before the bot's ack arrived: the series goes on all the same.
                await schedule_next(session, reminder)
            log.info("reminder %s of user %s: %s from a button", reminder.id, reminder.user_id, reminder.status)
        return PressResult(
            id=reminder.id, status=reminder.status, changed=changed, due_local=local_iso(reminder.due_at, zone)
        )


def delivery_router(db: Database, settings: DeliverySettings, default_timezone: str) -> APIRouter:
    router = APIRouter(prefix="/internal/reminders")

    class BoundedClaimRequest(ClaimRequest):
        lease_seconds: int = Field(60, ge=1, le=settings.max_lease_seconds)
        limit: int = Field(20, ge=1, le=settings.max_claim)

    async def report(delivery_key: UUID, change: Callable[[Reminder], None]) -> DeliveryStatus:
        result = await report_on_reminder(db, delivery_key, change)
        if result is None:
            raise HTTPException(404, f"no reminder with delivery key {delivery_key}")
        return result

    @router.post("/claim")
    async def claim(request: BoundedClaimRequest | None = None) -> list[DueReminder]:
        request = request or BoundedClaimRequest()
        return await claim_due_reminders(
            db,
            now=utcnow(),
            lease_seconds=request.lease_seconds,
            limit=request.limit,
            settings=settings,
            default_timezone=default_timezone,
        )

    @router.post("/{delivery_key}/ack")
    async def ack(delivery_key: DeliveryKey) -> DeliveryStatus:
        return await report(delivery_key, mark_delivered)

    @router.post("/{delivery_key}/fail")
    async def fail(delivery_key: DeliveryKey, failure: FailureReport) -> DeliveryStatus:
        def give_up(reminder: Reminder) -> None:
            if reminder.status == "pending":
                reminder.status, reminder.lease_until, reminder.last_error = "failed", None, failure.reason
                log.warning("reminder %s of user %s failed: %s", reminder.id, reminder.user_id, failure.reason)

        return await report(delivery_key, give_up)

    @router.post("/{delivery_key}/retry")
    async def retry(delivery_key: DeliveryKey) -> DeliveryStatus:
        def postpone(reminder: Reminder) -> None:
            if reminder.status == "pending":
                reminder.lease_until = utcnow() + retry_delay(reminder.attempts, settings)

        return await report(delivery_key, postpone)

    async def pressed(
        delivery_key: UUID, press: ReminderPress, change: Callable[[Reminder, ZoneInfo], None]
    ) -> PressResult:
        result = await press_button(db, delivery_key, press, default_timezone, change)
        if result is None:
            raise HTTPException(404, f"user {press.user_id} has no reminder {press.reminder_id} or {delivery_key}")
        return result

    @router.post("/{delivery_key}/done")
    async def done(delivery_key: DeliveryKey, press: ReminderPress) -> PressResult:
        return await pressed(delivery_key, press, mark_done)

    @router.post("/{delivery_key}/snooze")
    async def snooze(delivery_key: DeliveryKey, press: SnoozeRequest) -> PressResult:
        def move(reminder: Reminder, zone: ZoneInfo) -> None:
            snooze_to(reminder, snoozed_until(press.snooze, reminder.due_at, utcnow(), zone))

        return await pressed(delivery_key, press, move)

    return router

"""Reminder delivery for the bot: plain JSON endpoints, not MCP tools, so the LLM never sees them.

They sit behind the same bearer token as /mcp (`Authorization: Bearer <MCP_AUTH_TOKEN>`; 401 without it).

POST /internal/reminders/claim
    Body (optional, both fields optional): {"lease_seconds": 60, "limit": 20}
        lease_seconds: 1..delivery.max_lease_seconds (3600); limit: 1..delivery.max_claim (100).
    200: a JSON list, oldest due first, possibly empty:
        [{"id": 7, "user_id": 123456789, "text": "Call mum",
          "due_at": "2025-11-25T09:00:00+00:00",        UTC, ISO 8601
          "due_at_local": "2025-11-25T12:00:00+03:00",  the same instant in the user's timezone
          "timezone": "Europe/Moscow",                   the user's IANA timezone
          "late": false}]                                claimed > delivery.late_after_seconds after due_at
    Claims pending reminders whose time has come and leases them for lease_seconds. Atomic: two concurrent
    claimers never get the same reminder. A reminder not acknowledged before its lease ends is claimable again,
    so delivery is at-least-once: a bot that crashes between sending and acknowledging sends it once more.
    422 for a malformed body.

POST /internal/reminders/{id}/ack
    No body. Marks the reminder delivered; it is never claimed again.
    200: {"id": 7, "status": "delivered"}; acknowledging twice is fine. If the user cancelled it while it was
    leased, the answer is {"id": 7, "status": "cancelled"}. 404 for an unknown id.
"""

from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select, update

from mcp_server.db import Database
from mcp_server.models import Reminder, User, utcnow
from mcp_server.settings import DeliverySettings
from mcp_server.times import local_iso
from mcp_server.tools.common import MAX_ROW_ID


class ClaimedReminder(BaseModel):
    id: int
    user_id: int
    text: str
    due_at: str
    due_at_local: str
    timezone: str
    late: bool


class AckResult(BaseModel):
    id: int
    status: Literal["delivered", "cancelled"]


async def claim_due_reminders(
    db: Database, *, now: datetime, lease_seconds: int, limit: int, late_after: timedelta, default_timezone: str
) -> list[ClaimedReminder]:
    claimable = and_(
        Reminder.status == "pending",
        Reminder.due_at <= now,
        or_(Reminder.lease_until.is_(None), Reminder.lease_until <= now),
    )
    # SKIP LOCKED: on PostgreSQL a second claimer takes the next rows instead of waiting; SQLite serialises writers.
    due_ids = (
        select(Reminder.id)
        .where(claimable)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # `claimable` again in the outer WHERE: a row another claimer leased meanwhile no longer qualifies.
    lease = (
        update(Reminder)
        .where(Reminder.id.in_(due_ids.scalar_subquery()), claimable)
        .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=Reminder.attempts + 1)
        .returning(Reminder.id, Reminder.user_id, Reminder.text, Reminder.due_at)
        .execution_options(synchronize_session=False)
    )
    async with db.session() as session:
        claimed = (await session.execute(lease)).all()
        user_ids = {row.user_id for row in claimed}
        zones = dict(
            (await session.execute(select(User.user_id, User.timezone).where(User.user_id.in_(user_ids)))).all()
        )
    result = []
    for row in sorted(claimed, key=lambda row: (row.due_at, row.id)):
        zone = ZoneInfo(zones.get(row.user_id, default_timezone))
        result.append(
            ClaimedReminder(
                id=row.id,
                user_id=row.user_id,
                text=row.text,
                due_at=row.due_at.isoformat(timespec="seconds"),
                due_at_local=local_iso(row.due_at, zone),
                timezone=zone.key,
                late=now - row.due_at > late_after,
            )
        )
    return result


async def acknowledge_reminder(db: Database, reminder_id: int) -> AckResult | None:
    async with db.session() as session:
        reminder = await session.get(Reminder, reminder_id)
        if reminder is None:
            return None
        if reminder.status == "pending":
            reminder.status, reminder.delivered_at, reminder.lease_until = "delivered", utcnow(), None
        return AckResult.model_validate(reminder, from_attributes=True)


def delivery_router(db: Database, settings: DeliverySettings, default_timezone: str) -> APIRouter:
    router = APIRouter(prefix="/internal/reminders")

    class ClaimRequest(BaseModel):
        lease_seconds: int = Field(60, ge=1, le=settings.max_lease_seconds)
        limit: int = Field(20, ge=1, le=settings.max_claim)

    @router.post("/claim")
    async def claim(request: ClaimRequest | None = None) -> list[ClaimedReminder]:
        request = request or ClaimRequest()
        return await claim_due_reminders(
            db,
            now=utcnow(),
            lease_seconds=request.lease_seconds,
            limit=request.limit,
            late_after=timedelta(seconds=settings.late_after_seconds),
            default_timezone=default_timezone,
        )

    @router.post("/{reminder_id}/ack")
    async def ack(reminder_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> AckResult:
        result = await acknowledge_reminder(db, reminder_id)
        if result is None:
            raise HTTPException(404, f"no reminder with id {reminder_id}")
        return result

    return router

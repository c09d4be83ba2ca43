"""The tables: users (their timezone), tasks, notes, reminders and their series. Every row belongs to one user.

These are the rows; what the tools and the delivery endpoints return is in shared.results, which the bot
reads with the same models.
"""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python; naive UTC text in SQLite (so it sorts and compares), timestamptz elsewhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store takes aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Stable constraint names, so later migrations can refer to them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Telegram user ids need more than 32 bits.
TelegramId = BigInteger
# sqlite_autoincrement: ids are never reused, so an id the LLM remembers never names a newer row.
NO_ID_REUSE = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_user_open_due", "user_id", "completed_at", "due_at"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId)
    title: Mapped[str] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(SmallInteger, default=1)
    # The instant the task becomes overdue; for a whole-day task, the midnight that ends due_date in the
    # user's timezone (recomputed when the timezone changes, so the calendar day stays the same).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Case-folded title and notes: SQLite's lower() folds ASCII only.
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Note(Base):
    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_user_updated", "user_id", "updated_at"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReminderSeries(Base):
    """A recurring reminder: each occurrence is a Reminder row, the next made as one ends (mcp_server.series)."""

    __tablename__ = "reminder_series"
    __table_args__ = (Index("ix_reminder_series_user_status", "user_id", "status"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId)
    text: Mapped[str] = mapped_column(Text)
    # An RFC 5545 RRULE without DTSTART, e.g. "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0".
    rule: Mapped[str] = mapped_column(Text)
    # The rule's DTSTART: a naive wall-clock time in the user's zone, so 09:00 stays 09:00 across DST.
    start: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    # The zone the series was made in; the user's own timezone, once set, takes precedence.
    timezone: Mapped[str] = mapped_column(String(64))
    # reminder (the text is sent) or briefing (the bot sends the day's agenda).
    kind: Mapped[str] = mapped_column(String(16), default="reminder")
    # active, paused (its pending occurrence waits as paused) or cancelled.
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_status_due", "status", "due_at"),
        Index("ix_reminders_user_status_due", "user_id", "status", "due_at"),
        Index("ix_reminders_delivery_key", "delivery_key", unique=True),
        Index("ix_reminders_series_status", "series_id", "status"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(TelegramId)
    text: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the bot remembers as sent: unlike the id, never reused after a reset or a move to another database.
    delivery_key: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4)
    # pending -> delivered (acknowledged by the bot), cancelled (by the user) or failed (given up on);
    # delivered -> done (the user pressed Done); an occurrence of a series may also be skipped or paused.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # A claimed reminder is pending with a lease in the future; an expired lease makes it claimable again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Claims so far: mcp_server.delivery gives up on a reminder after delivery.max_attempts.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Why the bot gave up on a failed reminder.
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The series this is an occurrence of; None for a one-off reminder.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("reminder_series.id"))
    # The rule's naive local time this occurrence stands for; due_at may differ (a snooze, a DST gap).
    occurrence: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    # Loaded with the row (a join), so a view can show the rule without another query.
    series: Mapped[ReminderSeries | None] = relationship(lazy="joined")

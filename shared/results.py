"""What the MCP server returns and the bot reads: tool results and the reminder-delivery payloads.

The server builds these models and the bot validates what it receives with the same ones, so a renamed or
retyped field fails a test on both sides instead of reading as missing on the far side of the wire.
"""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, WithJsonSchema

# In results: one "type" keyword instead of pydantic's anyOf, which every client validates per row at twice the cost.
OptionalText = Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})]

Priority = Literal["low", "normal", "high"]
TaskStatus = Literal["open", "overdue", "done"]
# failed: given up after delivery kept failing (see DueReminder.final_attempt); done: the user pressed Done;
# skipped: one occurrence of a series skipped; paused: an occurrence of a paused series, kept until it resumes.
ReminderStatus = Literal["pending", "delivered", "cancelled", "failed", "done", "skipped", "paused"]


class Task(BaseModel):
    id: int
    title: str
    notes: OptionalText
    priority: Priority
    status: TaskStatus = Field(description="overdue: open and past its due time")
    due: OptionalText = Field(description="Local due date ('YYYY-MM-DD', whole day) or date-time with UTC offset")
    completed_at: OptionalText = Field(description="When it was marked done, local time")


class TaskList(BaseModel):
    tasks: list[Task]
    more: bool = Field(description="More tasks match than were returned: narrow the filter or raise the limit")
    timezone: str = Field(description="The user's timezone, which the times are shown in")


class Reminder(BaseModel):
    id: int
    text: str
    due: str = Field(description="When the bot sends it, local time with UTC offset")
    status: ReminderStatus
    every: OptionalText = Field(None, description="The RRULE of its series; null for a one-off reminder")
    series_id: int | None = Field(None, description="Its recurring series, which cancel and pause can act on")


class ReminderList(BaseModel):
    reminders: list[Reminder]
    more: bool = Field(description="More reminders are pending than were returned: raise the limit")
    timezone: str = Field(description="The user's timezone, which the times are shown in")


class Agenda(BaseModel):
    now: str = Field(description="Current local time")
    timezone: str
    overdue_tasks: list[Task] = Field(description="Open tasks whose due time has passed, oldest first")
    due_today: list[Task] = Field(description="Open tasks due later today")
    reminders: list[Reminder] = Field(description="Reminders still to be sent today")
    more: bool = Field(description="A list was cut at the limit: call tasks_list or reminders_list for the rest")
    daily_at: OptionalText = Field(
        None, description="The agenda is also sent every day at this local time ('HH:MM'); null when it is not"
    )


class ClaimRequest(BaseModel):
    """Body of POST /internal/reminders/claim; the server bounds both fields by its settings."""

    lease_seconds: int = Field(60, ge=1)
    limit: int = Field(20, ge=1)


class DueReminder(BaseModel):
    """One reminder handed to the bot by a claim, leased to it until it reports back or the lease ends."""

    id: int
    # Unique across databases and resets: what the bot remembers as sent, where a row id could be reused.
    delivery_key: UUID
    user_id: int
    text: str
    due_at: str = Field(description="UTC, ISO 8601")
    due_at_local: str = Field(description="The same instant in the user's timezone")
    timezone: str = Field(description="The user's IANA timezone")
    late: bool = Field(description="Claimed well after due_at (the bot was down, or delivery kept failing)")
    attempt: int = Field(description="1 on the first claim, one more on each claim after a failure or lost lease")
    final_attempt: bool = Field(description="The server gives up on it if this attempt fails too")
    kind: Literal["reminder", "briefing"] = Field(
        "reminder", description="briefing: the bot sends the day's agenda instead of the text"
    )


MAX_FAILURE_REASON = 500


class FailureReport(BaseModel):
    """Body of POST /internal/reminders/{delivery_key}/fail: why the bot gave up on a reminder."""

    reason: str = Field(max_length=MAX_FAILURE_REASON)


class DeliveryStatus(BaseModel):
    """The answer to ack, fail and retry: the reminder's status after the report."""

    id: int
    status: ReminderStatus


# What a button under a delivered reminder asks for: +10 min, +1 h, or the same local time tomorrow.
Snooze = Literal["10m", "1h", "tomorrow"]


class ReminderPress(BaseModel):
    """Body of POST /internal/reminders/{delivery_key}/done: who pressed, on which reminder's message."""

    user_id: int
    # With the key from the button, it tells a button on an older delivery of the reminder from one never known.
    reminder_id: int


class SnoozeRequest(ReminderPress):
    """Body of POST /internal/reminders/{delivery_key}/snooze."""

    snooze: Snooze


class PressResult(BaseModel):
    """The answer to done and snooze: what became of the reminder."""

    id: int
    status: ReminderStatus = Field(description="After the press")
    changed: bool = Field(
        description="False for a stale button: the reminder was done, cancelled or re-sent since; nothing changed"
    )
    due_local: str = Field(description="When it is due now, in the user's timezone")


class Note(BaseModel):
    id: int
    title: OptionalText
    text: str
    created_at: str = Field(description="Local time")
    updated_at: str = Field(description="Local time")


class Export(BaseModel):
    """GET /internal/export: everything the server keeps for one user, for the bot's /export."""

    user_id: int
    exported_at: str = Field(description="Local time")
    timezone: str = Field(description="The user's timezone, which the times are shown in")
    tasks: list[Task] = Field(description="Open and done, oldest first")
    notes: list[Note] = Field(description="Oldest first")
    reminders: list[Reminder] = Field(description="Every status, soonest due first")

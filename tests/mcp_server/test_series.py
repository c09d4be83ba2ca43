"""Recurring reminders: the issue's example rules, DST in Europe/Berlin, the next occurrence made with the ack,
pause, resume, stop and skip, and rules refused with a sentence the model can act on."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, update

from mcp_server.db import Database
from mcp_server.models import Base, Reminder
from tests.mcp_server.conftest import UserFactory, UserSession
from tests.mcp_server.test_delivery import bot, claim, report  # noqa: F401 (bot is a fixture)

BERLIN = "Europe/Berlin"
WEEKDAYS_AT_9 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0"


async def skip_through(user: UserSession, first: dict[str, Any], times: int) -> list[str]:
    """The local due times of the first occurrence and the `times` after it, skipping each to get the next."""
    dues, current = [first["due"]], first
    for _ in range(times):
        skipped = await user.call("reminders_cancel", reminder_id=current["id"])
        assert skipped["status"] == "skipped", f"expected the occurrence skipped, got {skipped}"
        ahead = [r for r in (await user.call("reminders_list"))["reminders"] if r["series_id"] == first["series_id"]]
        assert len(ahead) == 1, f"expected one occurrence of series {first['series_id']} ahead, got {ahead}"
        current = ahead[0]
        dues.append(current["due"])
    return dues


@pytest.mark.parametrize(
    ("every", "at", "expected"),
    [
        # Every weekday at 9, from a Friday.
        (WEEKDAYS_AT_9, "2035-01-05T00:00", ["2035-01-05T09:00:00+01:00", "2035-01-08T09:00:00+01:00"]),
        # Every 2 hours.
        ("FREQ=HOURLY;INTERVAL=2", "2035-01-02T10:00", ["2035-01-02T10:00:00+01:00", "2035-01-02T12:00:00+01:00"]),
        # On the 1st of each month, across the spring DST change.
        (
            "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0",
            "2035-02-15T00:00",
            ["2035-03-01T09:00:00+01:00", "2035-04-01T09:00:00+02:00"],
        ),
        # Every Monday and Thursday at 18:30, from a Tuesday.
        (
            "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=18;BYMINUTE=30",
            "2035-01-02T00:00",
            ["2035-01-04T18:30:00+01:00", "2035-01-08T18:30:00+01:00", "2035-01-11T18:30:00+01:00"],
        ),
    ],
)
async def test_the_example_rules_give_their_occurrences(
    as_user: UserFactory, every: str, at: str, expected: list[str]
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        first = await alice.call("reminders_create", text="Stand-up", at=at, every=every)
        assert first["every"] == every and first["series_id"] and first["status"] == "pending", first
        assert await skip_through(alice, first, len(expected) - 1) == expected, f"for {every} from {at}"


@pytest.mark.parametrize(
    ("every", "at", "expected"),
    [
        # Spring forward (Sunday 2035-03-25) and fall back (Sunday 2035-10-28): 09:00 stays 09:00 local, the
        # offset changes. A year well ahead, so the dates stay in the future for as long as the test lives.
        (
            WEEKDAYS_AT_9,
            "2035-03-22T00:00",
            ["2035-03-22T09:00:00+01:00", "2035-03-23T09:00:00+01:00", "2035-03-26T09:00:00+02:00"],
        ),
        (
            WEEKDAYS_AT_9,
            "2035-10-25T00:00",
            ["2035-10-25T09:00:00+02:00", "2035-10-26T09:00:00+02:00", "2035-10-29T09:00:00+01:00"],
        ),
        # 02:30 does not exist on 2035-03-25: that day's moves forward by the gap, the next is back at 02:30.
        (
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
            "2035-03-24T00:00",
            ["2035-03-24T02:30:00+01:00", "2035-03-25T03:30:00+02:00", "2035-03-26T02:30:00+02:00"],
        ),
        # 02:30 happens twice on 2035-10-28: the first one (summer time).
        (
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
            "2035-10-27T00:00",
            ["2035-10-27T02:30:00+02:00", "2035-10-28T02:30:00+02:00", "2035-10-29T02:30:00+01:00"],
        ),
    ],
)
async def test_local_times_hold_across_dst_in_berlin(
    as_user: UserFactory, every: str, at: str, expected: list[str]
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        first = await alice.call("reminders_create", text="Vitamins", at=at, every=every)
        assert await skip_through(alice, first, len(expected) - 1) == expected, f"for {every} from {at}"


async def make_due(db: Database, reminder_id: int, **values: Any) -> None:
    """Move a pending occurrence's due time to a moment ago (the rule's own time for it stays)."""
    async with db.session() as session:
        moved = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Reminder).where(Reminder.id == reminder_id).values(due_at=moved, **values))


async def series_rows(db: Database, series_id: int) -> list[tuple[int, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(Reminder.id, Reminder.status).where(Reminder.series_id == series_id).order_by(Reminder.id)
        )
        return [tuple(row) for row in rows.all()]


async def test_delivering_an_occurrence_schedules_the_next_with_the_ack(
    bot: httpx2.AsyncClient,  # noqa: F811
    db: Database,
    as_user: UserFactory,
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        first = await alice.call("reminders_create", text="Plants", at="2035-01-05T00:00", every=WEEKDAYS_AT_9)
        await make_due(db, first["id"])
        claimed = [r for r in await claim(bot) if r["id"] == first["id"]]
        assert len(claimed) == 1 and claimed[0]["kind"] == "reminder", f"expected the occurrence claimed: {claimed}"

        assert (await report(bot, claimed[0], "ack")).status == "delivered"
        listed = (await alice.call("reminders_list"))["reminders"]
        assert [(r["due"], r["series_id"]) for r in listed] == [("2035-01-08T09:00:00+01:00", first["series_id"])], (
            f"expected the Monday after the delivered Friday occurrence pending at once, got {listed}"
        )
        # A repeated ack, or a snoozed occurrence delivered again, makes no second next occurrence.
        assert (await report(bot, claimed[0], "ack")).status == "delivered"
        pressed = await bot.post(
            f"/internal/reminders/{claimed[0]['delivery_key']}/snooze",
            json={"user_id": alice.user_id, "reminder_id": first["id"], "snooze": "10m"},
        )
        assert pressed.status_code == 200, pressed.text
        await make_due(db, first["id"])
        again = [r for r in await claim(bot) if r["id"] == first["id"]]
        assert len(again) == 1, f"expected the snoozed occurrence claimed again: {again}"
        await report(bot, again[0], "ack")
        rows = await series_rows(db, first["series_id"])
        assert rows == [(first["id"], "delivered"), (listed[0]["id"], "pending")], f"expected one next, got {rows}"


async def test_a_failed_or_abandoned_occurrence_does_not_end_the_series(
    bot: httpx2.AsyncClient,  # noqa: F811
    db: Database,
    as_user: UserFactory,
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        first = await alice.call("reminders_create", text="Stretch", at="2035-01-05T00:00", every=WEEKDAYS_AT_9)
        await make_due(db, first["id"])
        claimed = [r for r in await claim(bot) if r["id"] == first["id"]]
        assert (await report(bot, claimed[0], "fail", reason="chat not found")).status == "failed"
        second = (await alice.call("reminders_list"))["reminders"]
        assert [r["due"] for r in second] == ["2035-01-08T09:00:00+01:00"], f"expected Monday next: {second}"

        # The bot claimed it again and again without reporting: the server gives up on it, and goes on.
        await make_due(db, second[0]["id"], attempts=100)
        assert second[0]["id"] not in [r["id"] for r in await claim(bot)], "expected the abandoned one not claimed"
        third = (await alice.call("reminders_list"))["reminders"]
        assert [r["due"] for r in third] == ["2035-01-09T09:00:00+01:00"], f"expected Tuesday next: {third}"
        rows = await series_rows(db, first["series_id"])
        assert [status for _, status in rows] == ["failed", "failed", "pending"], rows


async def test_pause_resume_and_stop_a_series(bot: httpx2.AsyncClient, db: Database, as_user: UserFactory) -> None:  # noqa: F811
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        first = await alice.call("reminders_create", text="Gym", at="2035-01-05T00:00", every=WEEKDAYS_AT_9)
        paused = await alice.call("reminders_cancel", reminder_id=first["id"], series="pause")
        assert (paused["id"], paused["status"]) == (first["id"], "paused"), paused
        listed = (await alice.call("reminders_list"))["reminders"]
        assert [(r["id"], r["status"]) for r in listed] == [(first["id"], "paused")], f"expected it listed: {listed}"
        await make_due(db, first["id"])
        assert first["id"] not in [r["id"] for r in await claim(bot)], "expected a paused occurrence not delivered"

        # Resumed after its time: that occurrence is skipped, and the series goes on from now.
        resumed = await alice.call("reminders_cancel", reminder_id=first["id"], series="resume")
        assert resumed["status"] == "pending" and resumed["id"] != first["id"], resumed
        assert datetime.fromisoformat(resumed["due"]) > datetime.now(UTC), f"expected a time ahead: {resumed}"
        assert datetime.fromisoformat(resumed["due"]).strftime("%H:%M") == "09:00", resumed
        statuses = dict(await series_rows(db, first["series_id"]))
        assert statuses == {first["id"]: "skipped", resumed["id"]: "pending"}, statuses

        stopped = await alice.call("reminders_cancel", reminder_id=first["id"], series="stop")
        assert (stopped["id"], stopped["status"]) == (first["id"], "skipped"), stopped
        assert (await alice.call("reminders_list"))["reminders"] == [], "expected nothing left after stop"
        statuses = dict(await series_rows(db, first["series_id"]))
        assert statuses == {first["id"]: "skipped", resumed["id"]: "cancelled"}, statuses
        error = await alice.fails("reminders_cancel", reminder_id=resumed["id"], series="resume")
        assert "stopped" in error, error

        once = await alice.call("reminders_create", text="Once", after_minutes=30)
        error = await alice.fails("reminders_cancel", reminder_id=once["id"], series="pause")
        assert "does not repeat" in error, error


async def test_pausing_and_resuming_before_its_time_keeps_the_occurrence(as_user: UserFactory) -> None:
    async with as_user() as alice:
        first = await alice.call("reminders_create", text="Call mum", at="2035-01-05T18:00", every="FREQ=WEEKLY")
        await alice.call("reminders_cancel", reminder_id=first["id"], series="pause")
        resumed = await alice.call("reminders_cancel", reminder_id=first["id"], series="resume")
        assert {key: resumed[key] for key in first} == first, f"expected the same occurrence back: {resumed}"


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        ("every weekday at 9", "Cannot read the rule"),
        ("FREQ=FORTNIGHTLY", "Cannot read the rule"),
        ("FREQ=DAILY;BYHOUR=25", "Cannot read the rule"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("FREQ=DAILY;UNTIL=20260101T000000", "never occurs"),
        ("FREQ=SECONDLY", "more often than once a minute"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0,30", "more often than once a minute"),
        ("DTSTART:20270101T090000\nRRULE:FREQ=DAILY", "without DTSTART"),
        ("FREQ=DAILY;UNTIL=20271231T000000Z", "without a trailing Z"),
    ],
)
async def test_bad_rules_are_refused_with_what_to_write(as_user: UserFactory, every: str, expected: str) -> None:
    async with as_user() as alice:
        error = await alice.fails("reminders_create", text="x", every=every)
        assert expected in error, f"for {every!r} expected {expected!r} in: {error}"
        assert (await alice.call("reminders_list"))["reminders"] == [], "expected nothing stored"


async def test_a_rule_without_a_first_time_starts_after_now(as_user: UserFactory) -> None:
    async with as_user() as alice:
        before = datetime.now(UTC)
        first = await alice.call("reminders_create", text="Drink water", every="FREQ=HOURLY;INTERVAL=2")
        due = datetime.fromisoformat(first["due"])
        assert timedelta(minutes=119) <= due - before <= timedelta(hours=2), f"expected in two hours: {first}"
        error = await alice.fails(
            "reminders_create", text="x", after_minutes=5, at="2035-01-01T09:00", every="FREQ=WEEKLY"
        )
        assert "not both" in error, error


async def test_the_migrations_build_the_tables_the_models_describe(db: Database) -> None:
    async with db.engine.connect() as connection:
        drift = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert drift == [], f"expected migration 0003 to match mcp_server.models; alembic sees {drift}"


async def test_after_a_move_the_series_keeps_its_local_time_and_a_snooze_its_instant(
    bot: httpx2.AsyncClient,  # noqa: F811
    db: Database,
    as_user: UserFactory,
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone=BERLIN)
        daily = await alice.call("reminders_create", text="Vitamins", at="2035-01-05T09:00", every="FREQ=DAILY")
        snoozed = await alice.call("reminders_create", text="Yoga", at="2035-01-05T00:00", every=WEEKDAYS_AT_9)
        await make_due(db, snoozed["id"])
        [claimed] = [r for r in await claim(bot) if r["id"] == snoozed["id"]]
        await report(bot, claimed, "ack")
        pressed = await bot.post(
            f"/internal/reminders/{claimed['delivery_key']}/snooze",
            json={"user_id": alice.user_id, "reminder_id": snoozed["id"], "snooze": "1h"},
        )
        before = (await alice.call("reminders_list"))["reminders"]
        await alice.call("time_set_timezone", timezone="America/New_York")
        after = {r["id"]: r["due"] for r in (await alice.call("reminders_list"))["reminders"]}
    assert pressed.status_code == 200, pressed.text
    assert after[daily["id"]] == "2035-01-05T09:00:00-05:00", f"expected 09:00 in New York now: {after}"
    next_yoga = next(r for r in before if r["series_id"] == snoozed["series_id"] and r["id"] != snoozed["id"])
    assert after[next_yoga["id"]] == "2035-01-08T09:00:00-05:00", f"expected Monday 09:00 New York: {after}"
    moved = datetime.fromisoformat(after[snoozed["id"]])
    kept = datetime.fromisoformat(next(r["due"] for r in before if r["id"] == snoozed["id"]))
    assert moved == kept, f"expected the snoozed occurrence at the same instant, {kept}; saw {moved}"

"""The morning briefing: agenda_today's daily_at keeps one daily series of kind "briefing" per user, or none."""

from datetime import UTC, datetime, timedelta

import httpx2
from sqlalchemy import select, update

from mcp_server.db import Database
from mcp_server.models import Reminder, ReminderSeries
from tests.mcp_server.conftest import TOKEN, RunningServer, UserFactory


async def briefing_rows(db: Database, user_id: int) -> list[tuple[str, str, str, datetime]]:
    """(series status, rule, occurrence status, due) for each of the user's briefing occurrences, oldest first."""
    async with db.session() as session:
        query = (
            select(ReminderSeries.status, ReminderSeries.rule, Reminder.status, Reminder.due_at)
            .join(Reminder, Reminder.series_id == ReminderSeries.id)
            .where(ReminderSeries.user_id == user_id, ReminderSeries.kind == "briefing")
            .order_by(Reminder.id)
        )
        return [tuple(row) for row in (await session.execute(query)).all()]


async def move_briefing(db: Database, user_id: int, from_now: timedelta) -> None:
    """Bring the user's pending briefing to `from_now` from now, as time passing would."""
    briefings = select(ReminderSeries.id).where(ReminderSeries.kind == "briefing")
    async with db.session() as session:
        await session.execute(
            update(Reminder)
            .where(Reminder.user_id == user_id, Reminder.status == "pending", Reminder.series_id.in_(briefings))
            .values(due_at=datetime.now(UTC) + from_now)
        )


async def test_set_change_and_turn_off_in_the_users_timezone(as_user: UserFactory, db: Database) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="Asia/Tokyo")
        assert (await alice.call("agenda_today"))["daily_at"] is None, "expected no briefing at first"

        agenda = await alice.call("agenda_today", daily_at="07:30")
        assert agenda["daily_at"] == "07:30", agenda
        [(series, rule, occurrence, due)] = await briefing_rows(db, alice.user_id)
        local = due.astimezone(datetime.fromisoformat(agenda["now"]).tzinfo)
        assert (series, rule, occurrence) == ("active", "FREQ=DAILY;BYHOUR=7;BYMINUTE=30", "pending"), rule
        assert local.strftime("%H:%M") == "07:30" and timedelta(0) < due - datetime.now(UTC) <= timedelta(days=1), (
            f"expected the first one at the next 07:30 Tokyo time, saw {local}"
        )
        assert (await alice.call("agenda_today"))["daily_at"] == "07:30", "expected the setting kept and shown"

        assert (await alice.call("agenda_today", daily_at="8:05"))["daily_at"] == "08:05"
        assert [row[:3] for row in await briefing_rows(db, alice.user_id)] == [
            ("cancelled", "FREQ=DAILY;BYHOUR=7;BYMINUTE=30", "cancelled"),
            ("active", "FREQ=DAILY;BYHOUR=8;BYMINUTE=5", "pending"),
        ], "expected one briefing per user: the new time replaces the old series and its occurrence"

        assert (await alice.call("agenda_today", daily_at="OFF"))["daily_at"] is None
        statuses = [row[0::2] for row in await briefing_rows(db, alice.user_id)]
        assert statuses == [("cancelled", "cancelled")] * 2, f"expected nothing left to send, saw {statuses}"
        assert (await alice.call("agenda_today", daily_at="off"))["daily_at"] is None, "expected off twice to be fine"


async def test_times_that_are_not_a_time_of_day_are_refused(as_user: UserFactory, db: Database) -> None:
    async with as_user() as alice:
        await alice.call("agenda_today", daily_at="06:00")
        for wrong in ("25:00", "8am", "08:00+03:00", "08:00:30", "tomorrow 8"):
            error = await alice.fails("agenda_today", daily_at=wrong)
            assert repr(wrong) in error and "'HH:MM'" in error, f"expected {wrong!r} refused with the form: {error}"
        assert (await alice.call("agenda_today"))["daily_at"] == "06:00", "expected a refused time to change nothing"
        assert len(await briefing_rows(db, alice.user_id)) == 1, "expected no briefing from a refused time"


async def test_each_user_has_their_own_briefing(as_user: UserFactory) -> None:
    async with as_user() as alice, as_user() as bob:
        await alice.call("agenda_today", daily_at="06:00")
        await bob.call("agenda_today", daily_at="09:00")
        await bob.call("agenda_today", daily_at="off")
        assert (await alice.call("agenda_today"))["daily_at"] == "06:00", "expected Bob's change to leave Alice's alone"


async def test_a_due_briefing_is_claimed_as_kind_briefing_and_the_next_day_follows_the_ack(
    as_user: UserFactory, db: Database, server: RunningServer
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="Europe/Berlin")
        await alice.call("agenda_today", daily_at="08:00")
        await move_briefing(db, alice.user_id, timedelta(minutes=1))
        await alice.call("reminders_create", text="call mum", after_minutes=1)
        agenda = await alice.call("agenda_today")
        assert [reminder["text"] for reminder in agenda["reminders"]] == ["call mum"], (
            f"expected the briefing due soon not listed in the agenda it sends, saw {agenda['reminders']}"
        )
        await move_briefing(db, alice.user_id, timedelta(seconds=-1))
        async with httpx2.AsyncClient(
            base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as bot:
            claimed = [
                due
                for due in (await bot.post("/internal/reminders/claim", json={"limit": 100})).json()
                if due["user_id"] == alice.user_id
            ]
            assert [due["kind"] for due in claimed] == ["briefing"], f"expected one briefing claimed, saw {claimed}"
            acked = await bot.post(f"/internal/reminders/{claimed[0]['delivery_key']}/ack")
            assert acked.json()["status"] == "delivered", acked.text
        *_, (series, _, occurrence, due) = await briefing_rows(db, alice.user_id)
        local = due.astimezone(datetime.fromisoformat((await alice.call("agenda_today"))["now"]).tzinfo)
        assert (series, occurrence) == ("active", "pending") and local.strftime("%H:%M") == "08:00", (
            f"expected the next briefing scheduled at 08:00 after the ack, saw {occurrence} at {local}"
        )
        assert due > datetime.now(UTC), f"expected the next briefing ahead, saw {due}"

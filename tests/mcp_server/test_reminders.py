"""Reminder tools: create at a time or after a delay, list pending, cancel."""

from datetime import UTC, datetime, timedelta

from tests.mcp_server.conftest import UserFactory


def parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def test_create_after_a_delay_and_at_a_local_time(as_user: UserFactory) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="America/New_York")
        soon = await alice.call("reminders_create", text="Stretch", after_minutes=90)
        expected = datetime.now(UTC) + timedelta(minutes=90)
        assert abs(parse(soon["due"]) - expected) < timedelta(seconds=30), soon
        assert soon["due"].endswith(("-05:00", "-04:00")) and soon["status"] == "pending", soon

        later = await alice.call("reminders_create", text="Dentist", at="2031-06-01T08:15")
        assert later["due"] == "2031-06-01T08:15:00-04:00", later

        listed = await alice.call("reminders_list")
        assert [r["text"] for r in listed["reminders"]] == ["Stretch", "Dentist"], listed
        assert listed["timezone"] == "America/New_York", listed


async def test_cancel_removes_it_from_the_pending_list(as_user: UserFactory) -> None:
    async with as_user() as alice:
        reminder = await alice.call("reminders_create", text="Bins out", after_minutes=60)
        cancelled = await alice.call("reminders_cancel", reminder_id=reminder["id"])
        assert cancelled["status"] == "cancelled", cancelled
        assert (await alice.call("reminders_list"))["reminders"] == []
        assert await alice.call("reminders_cancel", reminder_id=reminder["id"]) == cancelled, "expected idempotence"
        error = await alice.fails("reminders_cancel", reminder_id=reminder["id"] + 10_000)
        assert "No reminder with id" in error and "reminders_list" in error, error


async def test_impossible_or_ambiguous_times_are_refused(as_user: UserFactory) -> None:
    async with as_user() as alice:
        cases = {
            (("at", "2020-01-01T10:00"),): "already passed",
            (("at", "2031-06-01"),): "without a time of day",
            (("at", "2031-04-31T10:00"),): "day is out of range",
            (("at", "2031-06-01T10:00"), ("after_minutes", 5)): "exactly one",
            (): "exactly one",
            (("at", "2200-01-01T10:00"),): "at most 3660 days",
            (("after_minutes", 0),): "greater than or equal to 1",
        }
        for arguments, expected in cases.items():
            error = await alice.fails("reminders_create", text="x", **dict(arguments))
            assert expected in error, f"for {dict(arguments)} expected {expected!r} in: {error}"
        assert (await alice.call("reminders_list"))["reminders"] == []

"""Time tools (current time, the user's timezone) and today's agenda."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.mcp_server.conftest import UserFactory


async def test_time_now_follows_the_users_timezone(as_user: UserFactory) -> None:
    async with as_user() as alice:
        default = await alice.call("time_now")
        assert default["timezone"] == "UTC", default
        assert abs(datetime.fromisoformat(default["iso"]) - datetime.now(UTC)) < timedelta(seconds=30), default

        changed = await alice.call("time_set_timezone", timezone="Asia/Kolkata")
        assert changed["timezone"] == "Asia/Kolkata" and changed["iso"].endswith("+05:30"), changed
        now = await alice.call("time_now")
        assert now["timezone"] == "Asia/Kolkata" and now["iso"].endswith("+05:30"), now
        elsewhere = await alice.call("time_now", timezone="Pacific/Auckland")
        assert elsewhere["timezone"] == "Pacific/Auckland", elsewhere
        assert (await alice.call("time_now"))["timezone"] == "Asia/Kolkata", "asking elsewhere must not change it"


async def test_unknown_timezones_get_a_clear_error_with_suggestions(as_user: UserFactory) -> None:
    async with as_user() as alice:
        error = await alice.fails("time_set_timezone", timezone="Moscow")
        assert "Unknown timezone 'Moscow'" in error and "Europe/Moscow" in error, error
        error = await alice.fails("time_set_timezone", timezone="Europe/Berln")
        assert "Europe/Berlin" in error, error
        for name in ("Mars/Olympus", "../../etc/passwd", "", "UTC+3"):
            assert "timezone" in (await alice.fails("time_set_timezone", timezone=name)).lower(), name
        assert "Unknown timezone" in await alice.fails("time_now", timezone="Nowhere/Else")
        assert (await alice.call("time_now"))["timezone"] == "UTC", "expected a failed change to keep the old zone"


async def test_agenda_has_overdue_and_todays_tasks_and_todays_reminders(as_user: UserFactory) -> None:
    async with as_user() as alice:
        zone = "Pacific/Kiritimati"  # UTC+14: "today" there is rarely today in UTC
        await alice.call("time_set_timezone", timezone=zone)
        today = datetime.now(ZoneInfo(zone)).date()
        await alice.call("tasks_add", title="Overdue report", due=(today - timedelta(days=1)).isoformat())
        await alice.call("tasks_add", title="Today's call", due=today.isoformat())
        await alice.call("tasks_add", title="Next week", due=(today + timedelta(days=7)).isoformat())
        await alice.call("tasks_add", title="Someday")
        await alice.call("reminders_create", text="In a minute", after_minutes=1)
        await alice.call("reminders_create", text="Next month", after_minutes=60 * 24 * 30)

        agenda = await alice.call("agenda_today")
        assert agenda["timezone"] == zone and agenda["now"].endswith("+14:00"), agenda
        assert [t["title"] for t in agenda["overdue_tasks"]] == ["Overdue report"], agenda
        assert [t["title"] for t in agenda["due_today"]] == ["Today's call"], agenda
        # A reminder one minute ahead may fall just past midnight; the next month's never shows today.
        assert "Next month" not in [r["text"] for r in agenda["reminders"]], agenda
        assert agenda["more"] is False, agenda


async def test_a_time_the_clocks_skip_is_refused_with_the_time_that_exists(as_user: UserFactory) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="Europe/Berlin")
        error = await alice.fails("reminders_create", text="stretch", at="2027-03-28T02:30")
        assert "does not exist in Europe/Berlin" in error and "03:30" in error, error
        assert (await alice.call("reminders_list"))["reminders"] == [], "expected nothing scheduled an hour off"
        made = await alice.call("reminders_create", text="stretch", at="2027-10-31T02:30")
        assert made["due"].startswith("2027-10-31T02:30"), f"expected the repeated hour kept as written: {made}"

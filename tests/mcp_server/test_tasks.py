"""Task tools over the real protocol: add, list with each filter, complete, update, delete."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.mcp_server.conftest import UserFactory


async def test_added_task_is_listed_with_its_details(as_user: UserFactory) -> None:
    async with as_user() as alice:
        added = await alice.call(
            "tasks_add", title="Buy milk", notes="2 litres", due="2031-03-04T18:30", priority="high"
        )
        assert added["title"] == "Buy milk" and added["notes"] == "2 litres" and added["priority"] == "high", added
        assert added["due"] == "2031-03-04T18:30:00+00:00" and added["status"] == "open", added

        listed = await alice.call("tasks_list")
        assert listed["tasks"] == [added], f"expected exactly the new task, saw {listed['tasks']}"
        assert listed["more"] is False and listed["timezone"] == "UTC", listed


async def test_due_times_are_read_and_shown_in_the_users_timezone(as_user: UserFactory) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="Asia/Tokyo")
        added = await alice.call("tasks_add", title="Call the bank", due="2031-03-04T09:00")
        assert added["due"] == "2031-03-04T09:00:00+09:00", added
        whole_day = await alice.call("tasks_add", title="Pay rent", due="2031-03-05")
        assert whole_day["due"] == "2031-03-05", whole_day

        await alice.call("time_set_timezone", timezone="Europe/London")
        shown = {task["title"]: task["due"] for task in (await alice.call("tasks_list"))["tasks"]}
        # The same instant, shown in the new zone; a whole-day task stays that calendar day.
        assert shown == {"Call the bank": "2031-03-04T00:00:00+00:00", "Pay rent": "2031-03-05"}, shown


async def test_list_filters_open_done_overdue_due_today_and_text(as_user: UserFactory) -> None:
    async with as_user() as alice:
        today = datetime.now(ZoneInfo("UTC")).date()
        late = await alice.call("tasks_add", title="File taxes", due=(today - timedelta(days=2)).isoformat())
        todays = await alice.call("tasks_add", title="Water plants", due=today.isoformat())
        later = await alice.call("tasks_add", title="Renew passport", due=(today + timedelta(days=30)).isoformat())
        undated = await alice.call("tasks_add", title="Learn the ukulele", notes="Tabs for Plants and Animals")
        done = await alice.call("tasks_add", title="Buy plant pots")
        await alice.call("tasks_complete", task_id=done["id"])

        async def titles(**filters: object) -> list[str]:
            return [task["title"] for task in (await alice.call("tasks_list", **filters))["tasks"]]

        assert late["status"] == "overdue" and todays["status"] == "open", (late, todays)
        assert await titles() == ["File taxes", "Water plants", "Renew passport", "Learn the ukulele"]
        assert await titles(show="overdue") == ["File taxes"]
        assert await titles(show="due_today") == ["Water plants"]
        assert await titles(show="done") == ["Buy plant pots"]
        assert len(await titles(show="all")) == 5
        # Case-insensitive words, all of which must appear in the title or the notes.
        assert await titles(show="all", text="PLANT") == ["Water plants", "Learn the ukulele", "Buy plant pots"]
        assert await titles(text="plants ukulele") == ["Learn the ukulele"]
        assert await titles(text="100%_") == [], "expected % and _ to match literally"
        assert {later["id"], undated["id"]} <= {t["id"] for t in (await alice.call("tasks_list"))["tasks"]}


async def test_list_limit_reports_more(as_user: UserFactory) -> None:
    async with as_user() as alice:
        for n in range(4):
            await alice.call("tasks_add", title=f"Task {n}")
        listed = await alice.call("tasks_list", limit=3)
        assert len(listed["tasks"]) == 3 and listed["more"] is True, listed


async def test_complete_update_reopen_and_delete(as_user: UserFactory) -> None:
    async with as_user() as alice:
        task = await alice.call("tasks_add", title="Draft letter", due="2031-01-01")
        done = await alice.call("tasks_complete", task_id=task["id"])
        assert done["status"] == "done" and done["completed_at"], done
        assert await alice.call("tasks_complete", task_id=task["id"]) == done, (
            "expected completing twice to change nothing"
        )

        changed = await alice.call(
            "tasks_update", task_id=task["id"], title="Send letter", notes="by post", priority="low", reopen=True
        )
        assert (changed["title"], changed["notes"], changed["priority"]) == ("Send letter", "by post", "low"), changed
        assert changed["status"] == "open" and changed["due"] == "2031-01-01", changed
        cleared = await alice.call("tasks_update", task_id=task["id"], clear_due=True, notes="")
        assert cleared["due"] is None and cleared["notes"] is None, cleared
        moved = await alice.call("tasks_update", task_id=task["id"], due="2031-02-03T10:00")
        assert moved["due"] == "2031-02-03T10:00:00+00:00", moved

        assert await alice.call("tasks_delete", task_id=task["id"]) == {"id": task["id"], "deleted": True}
        assert (await alice.call("tasks_list", show="all"))["tasks"] == []
        error = await alice.fails("tasks_complete", task_id=task["id"])
        assert f"No task with id {task['id']}" in error and "tasks_list" in error, error


async def test_update_needs_a_consistent_change(as_user: UserFactory) -> None:
    async with as_user() as alice:
        task = await alice.call("tasks_add", title="Plan trip")
        error = await alice.fails("tasks_update", task_id=task["id"], due="2031-05-01", clear_due=True)
        assert "either due or clear_due" in error, error


async def test_bad_due_times_get_an_error_the_llm_can_act_on(as_user: UserFactory) -> None:
    async with as_user() as alice:
        for due in ("2031-02-30", "tomorrow", "2031-13-01T10:00", "9999-12-31"):
            error = await alice.fails("tasks_add", title="Impossible", due=due)
            assert "YYYY-MM-DDTHH:MM" in error, f"expected a format hint for {due!r}, got: {error}"
        assert (await alice.call("tasks_list", show="all"))["tasks"] == [], "expected no task from a failed add"


async def test_over_long_and_empty_text_is_refused(as_user: UserFactory) -> None:
    async with as_user() as alice:
        error = await alice.fails("tasks_add", title="x" * 201)
        assert "at most 200 characters" in error, error
        error = await alice.fails("tasks_add", title="   ")
        assert "at least 1 character" in error, error
        error = await alice.fails("tasks_add", title="ok", notes="n" * 4001)
        assert "at most 4000 characters" in error, error
        error = await alice.fails("tasks_add", title="nul\x00byte")
        assert "NUL" in error, error


async def test_wrong_types_and_missing_arguments_are_tool_errors(as_user: UserFactory) -> None:
    async with as_user() as alice:
        assert "title" in await alice.fails("tasks_add")
        assert "task_id" in await alice.fails("tasks_complete", task_id="seven")
        assert "priority" in await alice.fails("tasks_add", title="x", priority="urgent")
        assert "task_id" in await alice.fails("tasks_delete", task_id=2**40)
        assert "limit" in await alice.fails("tasks_list", limit=0)

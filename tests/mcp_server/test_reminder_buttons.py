"""The buttons under a delivered reminder, as the bot presses them: Done and snooze on the same reminder row."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
from sqlalchemy import update

from mcp_server.db import Database
from mcp_server.delivery import snoozed_until
from mcp_server.models import Reminder
from shared.results import PressResult
from tests.mcp_server import test_delivery
from tests.mcp_server.conftest import UserFactory
from tests.mcp_server.test_delivery import add_due, claim_of, reminder_row, report

# The bot's HTTP client, with nothing left due by other tests.
bot = test_delivery.bot


async def press(bot: httpx2.AsyncClient, key: str, what: str, **body: Any) -> httpx2.Response:
    return await bot.post(f"/internal/reminders/{key}/{what}", json=body)


async def pressed(bot: httpx2.AsyncClient, key: str, what: str, **body: Any) -> PressResult:
    response = await press(bot, key, what, **body)
    assert response.status_code == 200, f"expected {what} to answer 200, got {response.status_code}: {response.text}"
    return PressResult.model_validate(response.json())


async def delivered(bot: httpx2.AsyncClient, db: Database, user_id: int) -> dict[str, Any]:
    """A reminder of `user_id` claimed and acknowledged: the message with the buttons is in the chat."""
    (reminder_id,) = await add_due(db, user_id, timedelta(seconds=30))
    (claimed,) = await claim_of(bot, user_id)
    assert claimed["id"] == reminder_id, claimed
    await report(bot, claimed, "ack")
    return claimed


async def test_snooze_moves_the_same_reminder_and_gives_it_a_new_key_so_it_is_sent_again(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    sent = await delivered(bot, db, user)
    before = datetime.now(UTC)
    result = await pressed(bot, sent["delivery_key"], "snooze", user_id=user, reminder_id=sent["id"], snooze="10m")
    after = datetime.now(UTC)

    row = await reminder_row(db, sent["id"])
    assert result.changed and result.id == sent["id"] and result.status == "pending", result
    assert before + timedelta(minutes=10) <= row.due_at <= after + timedelta(minutes=10), (
        f"expected it due 10 min after the press ({before:%H:%M:%S}), saw {row.due_at:%H:%M:%S}"
    )
    assert (row.status, row.attempts, row.lease_until) == ("pending", 0, None), (row.status, row.attempts)
    assert str(row.delivery_key) != sent["delivery_key"], "expected a new delivery key, so the bot sends it again"
    async with db.session() as session:
        await session.execute(update(Reminder).where(Reminder.id == sent["id"]).values(due_at=before))
    (again,) = await claim_of(bot, user)
    assert (again["id"], again["delivery_key"]) == (sent["id"], str(row.delivery_key)), (
        f"expected the same reminder under its new key, claimed {again}"
    )


async def test_done_ends_the_reminder_and_a_second_press_is_stale(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    sent = await delivered(bot, db, user)
    first = await pressed(bot, sent["delivery_key"], "done", user_id=user, reminder_id=sent["id"])
    assert (first.changed, first.status) == (True, "done"), first
    second = await pressed(bot, sent["delivery_key"], "snooze", user_id=user, reminder_id=sent["id"], snooze="1h")
    assert (second.changed, second.status) == (False, "done"), f"expected a stale snooze on a done one: {second}"
    assert (await reminder_row(db, sent["id"])).status == "done"


async def test_a_button_from_before_a_snooze_is_stale_and_says_when_the_reminder_is_due(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    sent = await delivered(bot, db, user)
    snoozed = await pressed(bot, sent["delivery_key"], "snooze", user_id=user, reminder_id=sent["id"], snooze="1h")
    old = await pressed(bot, sent["delivery_key"], "done", user_id=user, reminder_id=sent["id"])
    assert (old.changed, old.status, old.due_local) == (False, "pending", snoozed.due_local), (
        f"expected the old Done to change nothing and say it is due at {snoozed.due_local}, saw {old}"
    )
    assert (await reminder_row(db, sent["id"])).status == "pending"


async def test_a_cancelled_reminder_is_stale(bot: httpx2.AsyncClient, db: Database, as_user: UserFactory) -> None:
    async with as_user() as alice:
        sent = await delivered(bot, db, alice.user_id)
        # A delivered reminder cannot be cancelled with the tool; the one the user cancels is still pending.
        async with db.session() as session:
            await session.execute(update(Reminder).where(Reminder.id == sent["id"]).values(status="cancelled"))
    result = await pressed(
        bot, sent["delivery_key"], "snooze", user_id=alice.user_id, reminder_id=sent["id"], snooze="10m"
    )
    assert (result.changed, result.status) == (False, "cancelled"), result


async def test_unknown_reminders_and_other_users_get_404(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    owner, stranger = new_user_id(), new_user_id()
    sent = await delivered(bot, db, owner)
    theirs = await press(bot, sent["delivery_key"], "done", user_id=stranger, reminder_id=sent["id"])
    assert theirs.status_code == 404, f"expected 404 for another user's reminder, got {theirs.status_code}"
    gone = await press(bot, str(uuid.uuid4()), "done", user_id=owner, reminder_id=2**31 - 1)
    assert gone.status_code == 404, f"expected 404 for a reminder no key or id names, got {gone.status_code}"
    odd = await press(bot, sent["delivery_key"], "snooze", user_id=owner, reminder_id=sent["id"], snooze="1y")
    assert odd.status_code == 422, f"expected 422 for a snooze the server does not know, got {odd.status_code}"
    assert (await reminder_row(db, sent["id"])).status == "delivered", "expected the refused presses to change nothing"


def test_tomorrow_keeps_the_local_clock_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Saturday before the spring change: 09:00 is 08:00 UTC; on Sunday 09:00 is 07:00 UTC.
    due = datetime(2026, 3, 28, 9, 0, tzinfo=berlin)
    later = snoozed_until("tomorrow", due.astimezone(UTC), due.astimezone(UTC) + timedelta(minutes=5), berlin)
    assert later.astimezone(berlin) == datetime(2026, 3, 29, 9, 0, tzinfo=berlin), later.astimezone(berlin)
    assert later == datetime(2026, 3, 29, 7, 0, tzinfo=UTC), later

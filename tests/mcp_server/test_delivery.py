"""The bot's reminder delivery: atomic claims with a lease, re-delivery after an expired lease, ack, fail, retry."""

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, update

from mcp_server.db import MIGRATIONS_DIR, Database
from mcp_server.models import Reminder
from mcp_server.settings import DeliverySettings
from shared.results import DeliveryStatus, DueReminder
from tests.mcp_server.conftest import TOKEN, RunningServer, UserFactory, serve, server_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def bot(server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    """The bot's HTTP client, after leasing away anything other tests left due (fewer strays for `claim_of`)."""
    async with httpx2.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=30) as client:
        while (await client.post("/internal/reminders/claim", json={"lease_seconds": 3600, "limit": 100})).json():
            pass
        yield client


async def claim(bot: httpx2.AsyncClient, **body: int) -> list[dict[str, Any]]:
    response = await bot.post("/internal/reminders/claim", json=body)
    assert response.status_code == 200, f"expected the claim to succeed, got {response.status_code}: {response.text}"
    return response.json()


async def claim_of(bot: httpx2.AsyncClient, user_id: int, **body: int) -> list[dict[str, Any]]:
    """A claim, seen by one test: other tests' rows whose lease or retry wait ran out meanwhile are leased away."""
    return [r for r in await claim(bot, **body) if r["user_id"] == user_id]


async def report(bot: httpx2.AsyncClient, reminder: dict[str, Any], what: str, **body: str) -> DeliveryStatus:
    """Ack, fail or retry a claimed reminder by its delivery key; the answer in the shared shape."""
    response = await bot.post(f"/internal/reminders/{reminder['delivery_key']}/{what}", json=body or None)
    assert response.status_code == 200, f"expected {what} to succeed, got {response.status_code}: {response.text}"
    return DeliveryStatus.model_validate(response.json())


async def reminder_row(db: Database, reminder_id: int) -> Reminder:
    async with db.session() as session:
        row = await session.get(Reminder, reminder_id)
        assert row is not None, f"expected reminder {reminder_id} in the database"
        return row


async def add_due(db: Database, user_id: int, *ages: timedelta) -> list[int]:
    """Reminders that came due `age` ago (negative: still in the future)."""
    now = datetime.now(UTC)
    rows = [Reminder(user_id=user_id, text=f"due {age} ago", due_at=now - age, status="pending") for age in ages]
    async with db.session() as session:
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def test_claim_returns_due_reminders_in_the_contract_shape(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        await alice.call("time_set_timezone", timezone="Europe/Moscow")
        future = await alice.call("reminders_create", text="Not yet", after_minutes=30)
        cancelled = await alice.call("reminders_create", text="Never", after_minutes=30)
        await alice.call("reminders_cancel", reminder_id=cancelled["id"])
    late, fresh = await add_due(db, alice.user_id, timedelta(minutes=10), timedelta(seconds=30))

    claimed = await claim_of(bot, alice.user_id)
    assert [r["id"] for r in claimed] == [late, fresh], f"expected the two due reminders, oldest first: {claimed}"
    first = claimed[0]
    assert set(first) == set(DueReminder.model_fields), f"expected the shared DueReminder shape, got {first}"
    assert [DueReminder.model_validate(r).attempt for r in claimed] == [1, 1], claimed
    assert first["user_id"] == alice.user_id and first["timezone"] == "Europe/Moscow", first
    assert first["due_at"].endswith("+00:00") and first["due_at_local"].endswith("+03:00"), first
    assert datetime.fromisoformat(first["due_at"]) == datetime.fromisoformat(first["due_at_local"]), first
    assert [r["late"] for r in claimed] == [True, False], claimed
    assert future["id"] not in {r["id"] for r in claimed}


async def test_a_leased_reminder_is_not_claimed_again_and_an_acked_one_never(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    (reminder,) = await add_due(db, user, timedelta(minutes=1))
    (claimed,) = await claim_of(bot, user, lease_seconds=60)
    assert claimed["id"] == reminder, claimed
    assert await claim_of(bot, user) == [], "expected the lease to keep the reminder from a second claimer"

    assert await report(bot, claimed, "ack") == DeliveryStatus(id=reminder, status="delivered")
    again = await report(bot, claimed, "ack")
    assert again == DeliveryStatus(id=reminder, status="delivered"), "expected a repeated ack to be harmless"
    missing = await bot.post(f"/internal/reminders/{uuid.uuid4()}/ack")
    assert missing.status_code == 404, f"expected 404 for a key no reminder has, got {missing.status_code}"
    not_a_key = await bot.post(f"/internal/reminders/{reminder}/ack")
    assert not_a_key.status_code == 422, f"expected 422 for a bare id, got {not_a_key.status_code}"


async def test_an_expired_lease_makes_the_reminder_claimable_again(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    (reminder,) = await add_due(db, user, timedelta(minutes=1))
    assert [r["id"] for r in await claim_of(bot, user, lease_seconds=1)] == [reminder]
    assert await claim_of(bot, user, lease_seconds=1) == []
    await asyncio.sleep(1.2)
    (again,) = await claim_of(bot, user, lease_seconds=60)
    assert again["id"] == reminder and again["attempt"] == 2, f"expected re-delivery after expiry, got {again}"
    await report(bot, again, "ack")
    await asyncio.sleep(0.1)
    assert await claim_of(bot, user) == []


async def test_a_reminder_cancelled_while_leased_acks_as_cancelled(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        (reminder,) = await add_due(db, alice.user_id, timedelta(seconds=5))
        (claimed,) = await claim_of(bot, alice.user_id)
        assert (await alice.call("reminders_cancel", reminder_id=reminder))["status"] == "cancelled"
    assert await report(bot, claimed, "ack") == DeliveryStatus(id=reminder, status="cancelled")


async def test_delivered_reminders_leave_the_users_list_and_cannot_be_cancelled(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        (reminder,) = await add_due(db, alice.user_id, timedelta(seconds=5))
        (claimed,) = await claim_of(bot, alice.user_id)
        await report(bot, claimed, "ack")
        assert (await alice.call("reminders_list"))["reminders"] == []
        assert "already sent" in await alice.fails("reminders_cancel", reminder_id=reminder)


async def test_concurrent_claimers_on_two_servers_never_share_a_reminder(
    server: RunningServer, bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    """Two bot instances, each behind its own server process on the same database, claim in parallel."""
    ours = set(await add_due(db, new_user_id(), *(timedelta(seconds=n) for n in range(1, 61))))
    with serve(server_settings(server.database_url)) as second:
        async with httpx2.AsyncClient(base_url=second.base_url, headers=AUTH, timeout=30) as other:
            claims: list[int] = []

            async def claimer(client: httpx2.AsyncClient) -> None:
                while batch := await claim(client, limit=3, lease_seconds=300):
                    claims.extend(r["id"] for r in batch)

            await asyncio.gather(*(claimer(client) for client in (bot, other) for _ in range(4)))
    duplicates = sorted({i for i in claims if claims.count(i) > 1})
    assert not duplicates, f"expected every reminder claimed once, these were claimed twice: {duplicates}"
    assert ours <= set(claims), f"expected all 60 claimed, missing {sorted(ours - set(claims))}"


@pytest.mark.parametrize(
    "body", [{"lease_seconds": 0}, {"lease_seconds": 3601}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}, []]
)
async def test_a_malformed_claim_gets_422(bot: httpx2.AsyncClient, body: Any) -> None:
    response = await bot.post("/internal/reminders/claim", json=body)
    assert response.status_code == 422, f"expected 422 for {body}, got {response.status_code}: {response.text}"


async def expire_lease(db: Database, reminder_id: int) -> None:
    """What the passing of the lease would do: the bot never reported back in time."""
    async with db.session() as session:
        await session.execute(
            update(Reminder).where(Reminder.id == reminder_id).values(lease_until=datetime.now(UTC) - timedelta(1))
        )


async def test_a_failed_reminder_keeps_its_reason_and_is_never_claimed_again(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        (reminder,) = await add_due(db, alice.user_id, timedelta(seconds=5))
        (claimed,) = await claim_of(bot, alice.user_id)
        status = await report(bot, claimed, "fail", reason="Telegram: message is too long")
        assert status == DeliveryStatus(id=reminder, status="failed")
        await expire_lease(db, reminder)
        assert await claim_of(bot, alice.user_id) == [], "expected a failed reminder to stay out of claims"
        assert (await reminder_row(db, reminder)).last_error == "Telegram: message is too long"
        assert (await alice.call("reminders_list"))["reminders"] == [], "expected only pending reminders listed"
    late_ack = await report(bot, claimed, "ack")
    assert late_ack.status == "delivered", "expected a success reported after giving up to count as delivered"


async def test_a_retry_waits_longer_after_each_attempt(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    (reminder,) = await add_due(db, user, timedelta(seconds=5))
    waits = []
    for attempt in (1, 2, 3):
        (claimed,) = await claim_of(bot, user)
        assert claimed["attempt"] == attempt, f"expected attempt {attempt}, got {claimed}"
        before = datetime.now(UTC)
        assert (await report(bot, claimed, "retry")).status == "pending"
        assert await claim_of(bot, user) == [], "expected a reminder to wait before its retry"
        lease_until = (await reminder_row(db, reminder)).lease_until
        assert lease_until is not None, "expected a retry to set a time before the next claim"
        waits.append(lease_until - before)
        await expire_lease(db, reminder)
    assert timedelta(seconds=25) < waits[0] < waits[1] < waits[2] <= timedelta(hours=1), (
        f"expected growing waits: {waits}"
    )


async def test_the_least_tried_reminder_is_claimed_first(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    (troubled,) = await add_due(db, user, timedelta(hours=1))
    (claimed,) = await claim_of(bot, user)
    await report(bot, claimed, "retry")
    await expire_lease(db, troubled)
    (fresh,) = await add_due(db, user, timedelta(minutes=1))
    order: list[int] = []
    while len(order) < 2 and (batch := await claim(bot, limit=1)):
        order += [r["id"] for r in batch if r["user_id"] == user]
    assert order == [fresh, troubled], (
        f"expected the never-tried reminder {fresh} before the older retried one {troubled}, got {order}"
    )


async def test_a_reminder_never_reported_on_fails_after_max_attempts(
    server: RunningServer, bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    """The bot died on it every time: after delivery.max_attempts claims the server stops handing it out."""
    (reminder,) = await add_due(db, new_user_id(), timedelta(seconds=5))
    with serve(server_settings(server.database_url, delivery=DeliverySettings(max_attempts=2))) as strict:
        async with httpx2.AsyncClient(base_url=strict.base_url, headers=AUTH, timeout=30) as other:
            seen = []
            for _ in range(3):
                seen += [(r["attempt"], r["final_attempt"]) for r in await claim(other) if r["id"] == reminder]
                await expire_lease(db, reminder)
    assert seen == [(1, False), (2, True)], f"expected two claims, the second marked final, got {seen}"
    row = await reminder_row(db, reminder)
    assert row.status == "failed" and row.last_error == "no report after 2 claims", (row.status, row.last_error)


def upgrade(path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_the_migration_gives_existing_reminders_unique_delivery_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade(path, "0001")
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO reminders (user_id, text, due_at, status, attempts, created_at) "
            "VALUES (1, ?, '2026-01-01 00:00:00', 'pending', 0, '2026-01-01 00:00:00')",
            [("a",), ("b",), ("c",)],
        )
    upgrade(path, "head")
    with sqlite3.connect(path) as connection:
        keys = [key for (key,) in connection.execute("SELECT delivery_key FROM reminders")]
    assert len(keys) == 3 and len(set(keys)) == 3 and None not in keys, f"expected three distinct keys, got {keys}"

"""The bot's reminder delivery: atomic claims with a lease, re-delivery after an expired lease, acknowledgement."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest

from mcp_server.db import Database
from mcp_server.models import Reminder
from tests.mcp_server.conftest import TOKEN, RunningServer, UserFactory, serve, server_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def bot(server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    """The bot's HTTP client, after leasing away anything other tests left due, so each test sees its own rows."""
    async with httpx2.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=30) as client:
        while (await client.post("/internal/reminders/claim", json={"lease_seconds": 3600, "limit": 100})).json():
            pass
        yield client


async def claim(bot: httpx2.AsyncClient, **body: int) -> list[dict[str, Any]]:
    response = await bot.post("/internal/reminders/claim", json=body)
    assert response.status_code == 200, f"expected the claim to succeed, got {response.status_code}: {response.text}"
    return response.json()


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

    claimed = await claim(bot)
    assert [r["id"] for r in claimed] == [late, fresh], f"expected the two due reminders, oldest first: {claimed}"
    first = claimed[0]
    assert set(first) == {"id", "user_id", "text", "due_at", "due_at_local", "timezone", "late"}, first
    assert first["user_id"] == alice.user_id and first["timezone"] == "Europe/Moscow", first
    assert first["due_at"].endswith("+00:00") and first["due_at_local"].endswith("+03:00"), first
    assert datetime.fromisoformat(first["due_at"]) == datetime.fromisoformat(first["due_at_local"]), first
    assert [r["late"] for r in claimed] == [True, False], claimed
    assert future["id"] not in {r["id"] for r in claimed}


async def test_a_leased_reminder_is_not_claimed_again_and_an_acked_one_never(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    (reminder,) = await add_due(db, new_user_id(), timedelta(minutes=1))
    assert [r["id"] for r in await claim(bot, lease_seconds=60)] == [reminder]
    assert await claim(bot) == [], "expected the lease to keep the reminder from a second claimer"

    acked = await bot.post(f"/internal/reminders/{reminder}/ack")
    assert acked.status_code == 200 and acked.json() == {"id": reminder, "status": "delivered"}, acked.text
    again = await bot.post(f"/internal/reminders/{reminder}/ack")
    assert again.json() == {"id": reminder, "status": "delivered"}, "expected a repeated ack to be harmless"
    missing = await bot.post("/internal/reminders/999999999/ack")
    assert missing.status_code == 404, missing.text


async def test_an_expired_lease_makes_the_reminder_claimable_again(
    bot: httpx2.AsyncClient, db: Database, new_user_id: Callable[[], int]
) -> None:
    (reminder,) = await add_due(db, new_user_id(), timedelta(minutes=1))
    assert [r["id"] for r in await claim(bot, lease_seconds=1)] == [reminder]
    assert await claim(bot, lease_seconds=1) == []
    await asyncio.sleep(1.2)
    assert [r["id"] for r in await claim(bot, lease_seconds=60)] == [reminder], "expected re-delivery after expiry"
    assert (await bot.post(f"/internal/reminders/{reminder}/ack")).status_code == 200
    await asyncio.sleep(0.1)
    assert await claim(bot) == []


async def test_a_reminder_cancelled_while_leased_acks_as_cancelled(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        (reminder,) = await add_due(db, alice.user_id, timedelta(seconds=5))
        assert [r["id"] for r in await claim(bot)] == [reminder]
        assert (await alice.call("reminders_cancel", reminder_id=reminder))["status"] == "cancelled"
    acked = await bot.post(f"/internal/reminders/{reminder}/ack")
    assert acked.json() == {"id": reminder, "status": "cancelled"}, acked.text


async def test_delivered_reminders_leave_the_users_list_and_cannot_be_cancelled(
    bot: httpx2.AsyncClient, db: Database, as_user: UserFactory
) -> None:
    async with as_user() as alice:
        (reminder,) = await add_due(db, alice.user_id, timedelta(seconds=5))
        await claim(bot)
        await bot.post(f"/internal/reminders/{reminder}/ack")
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

"""Reminder delivery against a fake of the MCP server's /internal/reminders endpoints."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage
from aiohttp import web
from aiohttp.test_utils import TestServer

from butler_bot.reminders import ReminderDelivery
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook
from tests.butler_bot.fakes import RecordingSession, recording_bot

TOKEN = "unit-test-token-0123456789"


@dataclass
class FakeDeliveryApi:
    """Hands out the scripted claims one per request (then nothing), records acknowledgements."""

    claims: list[list[dict[str, Any]]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    ack_status: int = 200
    claim_status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def claim(request: web.Request) -> web.Response:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            self.bodies.append(await request.json())
            if self.claim_status != 200:
                return web.json_response({"error": "down"}, status=self.claim_status)
            return web.json_response(self.claims.pop(0) if self.claims else [])

        async def ack(request: web.Request) -> web.Response:
            if self.ack_status != 200:
                return web.json_response({"error": "no"}, status=self.ack_status)
            self.acked.append(int(request.match_info["id"]))
            return web.json_response({"id": int(request.match_info["id"]), "status": "delivered"})

        app = web.Application()
        app.router.add_post("/internal/reminders/claim", claim)
        app.router.add_post("/internal/reminders/{id}/ack", ack)
        return app


def reminder(reminder_id: int, text: str = "stretch", *, late: bool = False, user_id: int = 1001) -> dict[str, Any]:
    return {
        "id": reminder_id,
        "user_id": user_id,
        "text": text,
        "due_at": "2025-11-25T06:00:00+00:00",
        "due_at_local": "2025-11-25T09:00:00+03:00",
        "timezone": "Europe/Moscow",
        "late": late,
    }


@dataclass
class Delivery:
    api: FakeDeliveryApi
    session: RecordingSession
    store: BotStore
    loop: ReminderDelivery

    async def run_until(self, done: Callable[[], bool], within: float = 5) -> None:
        """Run the loop until `done()` holds (polled every 20 ms), then stop it."""
        self.loop.start()
        try:
            for _ in range(int(within / 0.02)):
                if done():
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"expected the delivery to get there within {within} s; api={self.api}")
        finally:
            await self.loop.stop()


@pytest.fixture
async def delivery(make_settings: Callable[..., BotSettings]) -> AsyncIterator[Delivery]:
    api = FakeDeliveryApi()
    async with TestServer(api.app(), host="127.0.0.1") as server:
        settings = make_settings(mcp_url=str(server.make_url("/mcp")), mcp_auth_token=TOKEN, reminder_poll_seconds=0.05)
        store = BotStore.open(settings.store_path, settings.history_turns)
        bot, session = recording_bot()
        yield Delivery(api, session, store, ReminderDelivery(bot, settings, store, TextBook(settings.texts_file)))
        store.close()


async def test_claims_sends_and_acknowledges(delivery: Delivery) -> None:
    delivery.api.claims = [[reminder(1), reminder(2, "call mum", late=True)]]
    delivery.store.set_language(1001, "en")
    await delivery.run_until(lambda: len(delivery.api.acked) == 2)
    assert delivery.session.texts(1001) == [
        "⏰ Reminder: stretch",
        "⏰ Reminder, late (it was due 2025-11-25 09:00): call mum",
    ]
    assert delivery.api.acked == [1, 2]
    assert delivery.api.bodies[0] == {"lease_seconds": 60, "limit": 20}


async def test_reminders_speak_the_users_language(delivery: Delivery) -> None:
    delivery.store.set_language(1001, "ru")
    delivery.api.claims = [[reminder(1, "позвонить маме")]]
    await delivery.run_until(lambda: delivery.api.acked == [1])
    assert delivery.session.texts(1001) == ["⏰ Напоминание: позвонить маме"]


async def test_a_reminder_claimed_again_after_sending_is_not_sent_twice(delivery: Delivery) -> None:
    delivery.api.ack_status = 503  # sent, but the acknowledgement is lost: the server hands it out again
    delivery.api.claims = [[reminder(1)], [reminder(1)]]
    await delivery.run_until(lambda: not delivery.api.claims)
    delivery.api.ack_status = 200
    delivery.api.claims = [[reminder(1)]]
    await delivery.run_until(lambda: delivery.api.acked == [1])
    assert delivery.session.texts(1001) == ["⏰ Reminder: stretch"], "expected exactly one delivery"


async def test_a_failed_send_is_not_acknowledged_and_comes_back(delivery: Delivery) -> None:
    delivery.session.failures.append(TelegramNetworkError(SendMessage(chat_id=1001, text="x"), "network is down"))
    delivery.api.claims = [[reminder(1)], [reminder(1)]]
    await delivery.run_until(lambda: delivery.api.acked == [1])
    assert len(delivery.session.sent(1001)) == 2, "expected the failed attempt and one successful send"


async def test_survives_the_server_being_down_and_stops_promptly(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    delivery.api.claim_status = 502
    with caplog.at_level(logging.WARNING):
        await delivery.run_until(lambda: len(delivery.api.bodies) >= 3)
    warnings = [r for r in caplog.records if "cannot claim reminders" in r.getMessage()]
    assert len(warnings) == 1, "expected one warning per outage, not one per attempt"
    assert delivery.loop._task is not None and delivery.loop._task.done(), "expected the loop to have stopped"

"""Reminder delivery against the real MCP server (in-process, on SQLite), with a Bot API that records or fails."""

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from sqlalchemy import select, update
from tenacity import AsyncRetrying, RetryCallState

from butler_bot.backends import Backends
from butler_bot.health import start_health_server
from butler_bot.reminders import MAX_BACKOFF, FailureKind, ReminderDelivery, classify, outage_wait
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook
from mcp_server.db import Database
from mcp_server.models import Reminder
from mcp_server.settings import DeliverySettings
from tests.butler_bot.fakes import RecordingSession, recording_bot
from tests.mcp_server.conftest import TOKEN, RunningServer, serve, server_settings

USER = 1001
SEND = SendMessage(chat_id=USER, text="x")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mcp_server(database: Path, port: int, **overrides: Any) -> AbstractContextManager[RunningServer]:
    """The real MCP server on a port of our choosing, so a test can stop it and start it again at the same URL."""
    return serve(server_settings(f"sqlite+aiosqlite:///{database}", **overrides), port=port)


@dataclass
class Delivery:
    server: RunningServer
    session: RecordingSession
    store: BotStore
    loop: ReminderDelivery

    async def add_due(self, *texts: str, ago: timedelta = timedelta(seconds=5)) -> list[int]:
        """Reminders already due (no tool sets one in the past), the oldest first."""
        now = datetime.now(UTC)
        rows = [
            Reminder(user_id=USER, text=text, due_at=now - ago - timedelta(seconds=len(texts) - n), status="pending")
            for n, text in enumerate(texts)
        ]
        database = Database(self.server.database_url)
        try:
            async with database.session() as session:
                session.add_all(rows)
                await session.flush()
                return [row.id for row in rows]
        finally:
            await database.close()

    async def rows(self) -> dict[int, Reminder]:
        database = Database(self.server.database_url)
        try:
            async with database.session() as session:
                return {row.id: row for row in (await session.scalars(select(Reminder))).all()}
        finally:
            await database.close()

    async def change(self, reminder_id: int, **values: Any) -> None:
        database = Database(self.server.database_url)
        try:
            async with database.session() as session:
                await session.execute(update(Reminder).where(Reminder.id == reminder_id).values(**values))
        finally:
            await database.close()

    async def statuses(self) -> dict[int, str]:
        return {reminder_id: row.status for reminder_id, row in (await self.rows()).items()}

    async def run_until(self, done: Callable[[], Any], within: float = 30) -> None:
        """Run the loop until `done()` (sync or async) holds, then stop it."""
        self.loop.start()
        try:
            await wait_for(done, within, "the reminders delivered")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; sent so far: {self.session.texts(USER)}") from None
        finally:
            await self.loop.stop()


async def wait_for(done: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        result = done()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"expected it within {within} s: {what}")
        await asyncio.sleep(0.05)


def make_delivery(settings: BotSettings, store: BotStore) -> tuple[ReminderDelivery, RecordingSession]:
    bot, session = recording_bot()
    return ReminderDelivery(bot, settings, store, TextBook(settings.texts_file), Backends(settings, store)), session


@pytest.fixture
def bot_settings(make_settings: Callable[..., BotSettings]) -> Callable[[RunningServer], BotSettings]:
    return lambda server: make_settings(
        mcp_url=f"{server.base_url}/mcp", mcp_auth_token=TOKEN, reminder_poll_seconds=0.05
    )


@pytest.fixture
async def delivery(
    tmp_path: Path, bot_settings: Callable[[RunningServer], BotSettings], request: pytest.FixtureRequest
) -> AsyncIterator[Delivery]:
    overrides = getattr(request, "param", {})
    with mcp_server(tmp_path / "butler.db", free_port(), **overrides) as server:
        settings = bot_settings(server)
        store = BotStore.open(settings.store_path, settings.history_turns)
        store.set_language(USER, "en")
        loop, session = make_delivery(settings, store)
        yield Delivery(server, session, store, loop)
        store.close()


def delivered(delivery: Delivery, *reminder_ids: int) -> Callable[[], Any]:
    async def check() -> bool:
        statuses = await delivery.statuses()
        return all(statuses[i] in ("delivered", "failed") for i in reminder_ids)

    return check


async def test_due_reminders_are_sent_in_the_users_language_and_acknowledged(delivery: Delivery) -> None:
    (late,) = await delivery.add_due("call mum", ago=timedelta(hours=1))
    (fresh,) = await delivery.add_due("stretch")
    delivery.store.set_language(USER, "ru")
    await delivery.run_until(delivered(delivery, late, fresh))
    texts = delivery.session.texts(USER)
    late_prefix = delivery.loop.textbook.texts("ru")("reminder_late", text="", due="").split("(")[0]
    assert len(texts) == 2 and texts[0].startswith(late_prefix) and texts[1].endswith(": stretch"), (
        f"expected the late one marked late, both in Russian, oldest first; got {texts}"
    )
    assert await delivery.statuses() == {late: "delivered", fresh: "delivered"}


async def test_a_reminder_handed_out_again_after_it_was_sent_is_not_sent_twice(delivery: Delivery) -> None:
    (reminder,) = await delivery.add_due("stretch")
    await delivery.run_until(delivered(delivery, reminder))
    # The acknowledgement was lost: the server hands the same reminder out again once the lease ends.
    await delivery.change(reminder, status="pending", lease_until=None)
    await delivery.run_until(delivered(delivery, reminder))
    assert delivery.session.texts(USER) == ["⏰ Reminder: stretch"], "expected exactly one message"


async def test_a_full_bot_store_still_delivers_each_reminder_once(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = await delivery.add_due("first", "second")
    delivery.store.db.execute("PRAGMA query_only = ON")  # what a read-only or full disk does to every write
    await delivery.run_until(delivered(delivery, first, second))
    assert delivery.session.texts(USER) == ["⏰ Reminder: first", "⏰ Reminder: second"], "expected each sent once"
    assert await delivery.statuses() == {first: "delivered", second: "delivered"}
    refused = [r.getMessage() for r in caplog.records if "cannot record it as done" in r.getMessage()]
    assert len(refused) == 2 and "crashed" not in caplog.text, f"expected one line each and no crash: {caplog.text}"


async def test_a_reset_mcp_database_reusing_ids_does_not_mute_new_reminders(
    tmp_path: Path, bot_settings: Callable[[RunningServer], BotSettings]
) -> None:
    """The bot keeps its store; the MCP database starts again from empty and hands out id 1 once more."""
    store_path = tmp_path / "bot" / "bot.sqlite3"
    for database, text in (("first.db", "before the reset"), ("second.db", "after the reset")):
        with mcp_server(tmp_path / database, free_port()) as server:
            settings = bot_settings(server).model_copy(update={"store_path": store_path})
            store = BotStore.open(store_path, settings.history_turns)
            loop, session = make_delivery(settings, store)
            delivery = Delivery(server, session, store, loop)
            (reminder,) = await delivery.add_due(text)
            assert reminder == 1, f"expected the fresh database to start at id 1, got {reminder}"
            await delivery.run_until(delivered(delivery, reminder))
            store.close()
        assert session.texts(USER) == [f"⏰ Reminder: {text}"], f"expected {text!r} sent, got {session.texts(USER)}"


@pytest.mark.parametrize(
    ("error", "status", "told"),
    [
        (TelegramForbiddenError(SEND, "Forbidden: bot was blocked by the user"), "failed", False),
        (TelegramUnauthorizedError(SEND, "Unauthorized"), "failed", False),
        (TelegramBadRequest(SEND, "Bad Request: chat not found"), "failed", False),
        (TelegramEntityTooLarge(SEND, "Request Entity Too Large"), "failed", True),
        (TelegramBadRequest(SEND, "Bad Request: can't parse entities"), "failed", True),
        (RuntimeError("a bug in the bot"), "failed", True),
        (TelegramNetworkError(SEND, "network is unreachable"), "pending", False),
        (TelegramServerError(SEND, "Bad Gateway"), "pending", False),
        (TelegramRetryAfter(SEND, "Too Many Requests", retry_after=120), "pending", False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_a_failed_send_is_classified_once_and_the_rest_of_the_batch_is_delivered(
    delivery: Delivery, error: Exception, status: str, told: bool, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = await delivery.add_due("first, and failing", "second")
    delivery.session.failures.append(error)
    with caplog.at_level(logging.WARNING):
        await delivery.run_until(delivered(delivery, good))
    rows = await delivery.rows()
    assert (rows[bad].status, rows[good].status) == (status, "delivered"), (
        f"expected the failing one {status} and the next one delivered, got {rows[bad].status}, {rows[good].status}"
    )
    notices = [text for text in delivery.session.texts(USER) if text.startswith("⚠️")]
    if told:
        assert len(notices) == 1 and notices[0].endswith(": first, and failing"), f"expected one notice: {notices}"
    else:
        assert notices == [], f"expected the owner not told (their chat is unreachable, or it is retried): {notices}"
    if status == "pending":
        assert rows[bad].lease_until is not None and rows[bad].lease_until > datetime.now(UTC) + timedelta(
            seconds=20
        ), f"expected a retry after a wait, got lease_until={rows[bad].lease_until}"
    else:
        assert rows[bad].last_error and type(error).__name__ in rows[bad].last_error, rows[bad].last_error
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert bool(tracebacks) == isinstance(error, RuntimeError), f"expected a traceback for a bug only: {tracebacks}"


@pytest.mark.parametrize("delivery", [{"delivery": DeliverySettings(max_attempts=1)}], indirect=True)
async def test_a_transient_failure_on_the_final_attempt_gives_up_and_tells_the_owner(delivery: Delivery) -> None:
    (reminder,) = await delivery.add_due("water the plants")
    delivery.session.failures.append(TelegramNetworkError(SEND, "network is unreachable"))
    await delivery.run_until(delivered(delivery, reminder))
    assert (await delivery.statuses())[reminder] == "failed"
    texts = delivery.session.texts(USER)
    assert len(texts) == 2 and texts[1].startswith("⚠️") and texts[1].endswith("water the plants"), (
        f"expected the failed send, then one notice to the owner; got {texts}"
    )


async def test_a_reminder_given_up_on_is_not_told_about_twice(delivery: Delivery) -> None:
    (reminder,) = await delivery.add_due("stretch")
    delivery.session.failures.append(TelegramEntityTooLarge(SEND, "Request Entity Too Large"))
    await delivery.run_until(delivered(delivery, reminder))
    # The failure report was lost: the server hands it out again.
    await delivery.change(reminder, status="pending", lease_until=None)
    await delivery.run_until(delivered(delivery, reminder))
    notices = [text for text in delivery.session.texts(USER) if text.startswith("⚠️")]
    assert len(notices) == 1 and (await delivery.statuses())[reminder] == "failed", f"expected one notice: {notices}"


async def test_an_mcp_outage_is_logged_once_each_way_and_delivery_resumes_by_itself(
    tmp_path: Path, bot_settings: Callable[[RunningServer], BotSettings], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    with mcp_server(tmp_path / "butler.db", port) as server:
        settings = bot_settings(server)
    store = BotStore.open(settings.store_path, settings.history_turns)
    loop, session = make_delivery(settings, store)
    with caplog.at_level(logging.WARNING, logger="butler_bot.reminders"):
        loop.start()
        try:
            await wait_for(lambda: "cannot reach the MCP server" in caplog.text, 10, "the outage to be logged")
            await asyncio.sleep(1)  # several failed claims, which must not log a line each
            assert loop.alive, "expected the loop to keep running while the MCP server is down"
            with mcp_server(tmp_path / "butler.db", port) as server:
                delivery = Delivery(server, session, store, loop)
                (reminder,) = await delivery.add_due("back online")
                await wait_for(delivered(delivery, reminder), MAX_BACKOFF + 20, "delivery after the outage")
        finally:
            await loop.stop()
    outage = [r.getMessage() for r in caplog.records if "MCP server" in r.getMessage()]
    assert len(outage) == 2 and "cannot reach" in outage[0] and "answers again" in outage[1], (
        f"expected one WARNING when the outage starts and one when it ends, got {outage}"
    )
    assert all(r.levelno == logging.WARNING for r in caplog.records if "MCP server" in r.getMessage())
    assert session.texts(USER) == ["⏰ Reminder: back online"]
    store.close()


def test_the_outage_pause_is_capped_however_long_the_outage() -> None:
    wait = outage_wait(1.0)
    state = RetryCallState(AsyncRetrying(), fn=None, args=(), kwargs={})
    for attempts in (1, 10, 1_100, 100_000):
        state.attempt_number = attempts
        assert 0 < wait(state) <= MAX_BACKOFF, f"expected a pause of at most {MAX_BACKOFF} s after {attempts} failures"


async def test_a_crashed_loop_turns_health_red_and_is_restarted(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    runner = await start_health_server(port, {"reminders": lambda: delivery.loop.alive})
    path = delivery.loop.settings.store_path
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as health:
            delivery.loop.start()
            await wait_for(lambda: delivery.loop.alive, 10, "the loop to start")
            assert (await health.get("/health")).status_code == 200
            # The bot's store goes away under the loop: not any reminder's fault, so the loop itself fails.
            delivery.store.db.close()
            (reminder,) = await delivery.add_due("after the crash")
            await wait_for(lambda: not delivery.loop.alive, 10, "the loop to crash")
            answer = await health.get("/health")
            assert answer.status_code == 503 and answer.json()["reminders"] is False, answer.text
            assert "reminder delivery crashed" in caplog.text, "expected the crash logged with its traceback"
            delivery.store.db = sqlite3.connect(path, isolation_level=None)
            await delivery.change(reminder, lease_until=None)  # as the end of its lease would
            await wait_for(delivered(delivery, reminder), 30, "delivery after the restart")
            assert (await health.get("/health")).status_code == 200, "expected /health green again"
    finally:
        await delivery.loop.stop()
        await runner.cleanup()
    assert (await delivery.statuses())[reminder] == "delivered"
    assert delivery.session.texts(USER) == ["⏰ Reminder: after the crash"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TelegramEntityTooLarge(SEND, "Request Entity Too Large"), FailureKind.REFUSED),
        (TelegramNetworkError(SEND, "timeout"), FailureKind.TRANSIENT),
        (TelegramForbiddenError(SEND, "Forbidden: user is deactivated"), FailureKind.UNREACHABLE),
        (TelegramBadRequest(SEND, "Bad Request: message text is empty"), FailureKind.REFUSED),
        (KeyError("reminder"), FailureKind.BUG),
    ],
)
def test_each_error_has_one_kind(error: Exception, kind: FailureKind) -> None:
    assert classify(error).kind is kind, f"expected {error!r} to be {kind}, got {classify(error).kind}"

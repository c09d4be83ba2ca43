"""Reminder delivery: claim due reminders from the MCP server, send each to its user, report back.

At least once, and never dropped without a word:
- The server leases what it hands out; a reminder the bot never reports on comes back when the lease ends.
- The bot remembers each reminder's delivery key once it has sent it (or given up on it), so one that comes
  back is reported again, not sent twice. The key is a UUID: after a reset of either database a new reminder
  never passes for an old one, as a reused id would.
- Each failed send is classified once (`classify`). A transient one is retried by the server after a growing
  wait; an undeliverable one, a bug, or a transient one on its final attempt is given up on, and the owner is
  told once, unless their chat is what cannot be reached. The rest of the batch is delivered either way.
- While the MCP server cannot be reached the loop backs off (tenacity, capped at MAX_BACKOFF) and logs the
  outage once when it starts and once when it ends. A loop that crashes is restarted; /health is red meanwhile.
"""

import asyncio
import contextlib
import logging
import textwrap
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from pydantic import TypeAdapter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from butler_bot.backends import Backends
from butler_bot.briefing import briefing_text
from butler_bot.core import ToolsUnavailable
from butler_bot.internal_api import internal_session
from butler_bot.keyboards import reminder_keyboard, send_with_buttons
from butler_bot.replies import send_text
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore, DeliveryRecord
from butler_bot.texts import DEFAULT_LANGUAGE, TextBook, Texts
from butler_bot.views import when
from shared.results import MAX_FAILURE_REASON, ClaimRequest, DeliveryStatus, DueReminder, FailureReport

log = logging.getLogger(__name__)

CLAIM_LIMIT = 20
# Longest pause between claims while the MCP server cannot be reached: delivery resumes this soon after it is back.
MAX_BACKOFF = 10.0
# Longest pause before a crashed loop is started again.
MAX_RESTART_BACKOFF = 60.0
STOP_TIMEOUT = 10.0
# The reminder's text as quoted to its owner when it could not be delivered.
QUOTE_LENGTH = 200

DUE_REMINDERS = TypeAdapter(list[DueReminder])

# Worth another try later: the network, flood control, Telegram's own trouble.
TRANSIENT = (TelegramNetworkError, TelegramRetryAfter, TelegramServerError, TelegramConflictError)
# The chat cannot be reached: the user blocked the bot, the chat is gone, or the bot's token was revoked.
UNREACHABLE = (TelegramForbiddenError, TelegramNotFound, TelegramUnauthorizedError, TelegramMigrateToChat)


class FailureKind(Enum):
    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"
    # Telegram refuses this message (too large, a bad request, an error it does not name): it would again.
    REFUSED = "refused"
    BUG = "bug"


@dataclass(frozen=True)
class SendFailure:
    kind: FailureKind
    reason: str


def classify(exc: Exception) -> SendFailure:
    """Decide once what a failed send means for the reminder."""
    reason = f"{type(exc).__name__}: {exc}"[:MAX_FAILURE_REASON]
    # Checked first: aiogram makes "entity too large" a network error, but sending it again cannot help.
    if isinstance(exc, TelegramEntityTooLarge):
        kind = FailureKind.REFUSED
    elif isinstance(exc, TRANSIENT):
        kind = FailureKind.TRANSIENT
    elif isinstance(exc, UNREACHABLE) or (isinstance(exc, TelegramBadRequest) and "chat not found" in exc.message):
        kind = FailureKind.UNREACHABLE
    elif isinstance(exc, TelegramAPIError):
        kind = FailureKind.REFUSED
    else:
        kind = FailureKind.BUG
    return SendFailure(kind, reason)


class ServerUnreachable(Exception):
    """A delivery request got no answer from the MCP server, or an HTTP error."""


class ReminderDelivery:
    def __init__(
        self, bot: Bot, settings: BotSettings, store: BotStore, textbook: TextBook, backends: Backends
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.store = store
        self.textbook = textbook
        # The tools a briefing is written from.
        self.backends = backends
        # False before the start, after the stop, and while a crashed loop waits to be restarted.
        self.alive = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._telegram_failures = 0

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._supervise(), name="reminder-delivery")

    async def stop(self) -> None:
        """Finish the reminder being sent, then stop; what was claimed but not sent comes back after the lease."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._task
        except TimeoutError:
            log.warning("reminder delivery did not stop within %g s; cancelling it", STOP_TIMEOUT)
            self._task.cancel()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _supervise(self) -> None:
        restarts = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=1, max=MAX_RESTART_BACKOFF),
            sleep=self._pause,
            before_sleep=self._log_crash,
        )
        async for attempt in restarts:
            with attempt:
                if self._stopping.is_set():
                    break
                self.alive = True
                try:
                    await self._run()
                finally:
                    self.alive = False
        log.info("reminder delivery stopped")

    @staticmethod
    def _log_crash(retry_state: RetryCallState) -> None:
        assert retry_state.outcome is not None and retry_state.next_action is not None
        log.error(
            "reminder delivery crashed; restarting it in %.0f s",
            retry_state.next_action.sleep,
            exc_info=retry_state.outcome.exception(),
        )

    async def _run(self) -> None:
        async with internal_session(self.settings, timeout=10) as http:
            log.info("delivering reminders from %s", self.settings.mcp_base_url)
            while not self._stopping.is_set():
                await self._deliver_due_retrying(http)
                await self._pause(self.settings.reminder_poll_seconds)

    async def _deliver_due_retrying(self, http: aiohttp.ClientSession) -> None:
        """One claim-and-deliver round, retried with a growing pause while the MCP server cannot be reached."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ServerUnreachable),
            wait=outage_wait(self.settings.reminder_poll_seconds),
            sleep=self._pause,
            before_sleep=self._log_outage,
        )
        async for attempt in retrying:
            with attempt:
                if self._stopping.is_set():
                    return
                await self._deliver_due(http)
                failed = attempt.retry_state.attempt_number - 1
                if failed:
                    log.warning(
                        "the MCP server at %s answers again, after %s failed attempt(s) over %.0f s",
                        self.settings.mcp_base_url,
                        failed,
                        time.monotonic() - attempt.retry_state.start_time,
                    )

    def _log_outage(self, retry_state: RetryCallState) -> None:
        assert retry_state.outcome is not None
        if retry_state.attempt_number == 1:
            log.warning(
                "cannot reach the MCP server at %s for reminders (%s); retrying every %g s at most",
                self.settings.mcp_base_url,
                retry_state.outcome.exception(),
                MAX_BACKOFF,
            )

    async def _post(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to the delivery API; None for a 404 (the reminder is gone from the server)."""
        try:
            async with http.post(path, json=body) as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServerUnreachable(f"POST {path}: {exc!r}") from exc

    async def _deliver_due(self, http: aiohttp.ClientSession) -> None:
        claim = ClaimRequest(lease_seconds=self.settings.reminder_lease_seconds, limit=CLAIM_LIMIT)
        claimed = await self._post(http, "/internal/reminders/claim", claim.model_dump())
        for reminder in DUE_REMINDERS.validate_python(claimed):
            await self._deliver(http, reminder)

    async def _deliver(self, http: aiohttp.ClientSession, reminder: DueReminder) -> None:
        # Store read errors are not the reminder's fault: they end the loop, which is restarted, and it comes back.
        record = self.store.delivery(reminder.delivery_key)
        if record is None:
            failure = await self._send(reminder)
            if failure is not None and failure.kind is FailureKind.TRANSIENT and not reminder.final_attempt:
                await self._report(http, reminder, "retry")
                return
            record = DeliveryRecord(failure=failure.reason if failure else None)
            # Recorded before the owner is told, so a reminder that comes back is not told about twice. A full disk
            # does not stop the report: a crash there would bring the reminder back to be sent again and again.
            self.store.record_delivery(reminder.delivery_key, record)
            if failure is not None and failure.kind is not FailureKind.UNREACHABLE:
                await self._tell_owner(reminder)
        if record.failure is None:
            await self._report(http, reminder, "ack")
        else:
            await self._report(http, reminder, "fail", FailureReport(reason=record.failure).model_dump())

    def _texts(self, user_id: int) -> Texts:
        return self.textbook.texts(self.store.language(user_id) or DEFAULT_LANGUAGE)

    async def _send(self, reminder: DueReminder) -> SendFailure | None:
        """Send the reminder; what went wrong, classified and logged, or None when it was sent."""
        texts = self._texts(reminder.user_id)
        where = f"reminder {reminder.id} for user {reminder.user_id} (attempt {reminder.attempt})"
        try:
            text = await self._compose(reminder, texts)
            # Done and the snoozes under a reminder; a briefing is read, not acted on.
            keyboard = (
                None if reminder.kind == "briefing" else reminder_keyboard(reminder.id, reminder.delivery_key, texts)
            )
            await send_with_buttons(self.bot, reminder.user_id, text, keyboard)
        except ToolsUnavailable as exc:
            then = "giving up" if reminder.final_attempt else "it is retried later"
            log.warning("%s: cannot read the agenda for the briefing (%s); %s", where, exc, then)
            return SendFailure(FailureKind.TRANSIENT, f"tools unavailable: {exc}"[:MAX_FAILURE_REASON])
        except Exception as exc:
            failure = classify(exc)
            self._log_failure(where, failure, reminder.final_attempt, exc)
            return failure
        log.info("%s sent%s", where, " (late)" if reminder.late else "")
        if self._telegram_failures:
            log.warning("Telegram accepts reminders again, after %s failed send(s)", self._telegram_failures)
            self._telegram_failures = 0
        return None

    async def _compose(self, reminder: DueReminder, texts: Texts) -> str:
        if reminder.kind == "briefing":
            return await briefing_text(self.backends, reminder.user_id, texts)
        if reminder.late:
            return texts("reminder_late", text=reminder.text, due=when(reminder.due_at_local))
        return texts("reminder", text=reminder.text)

    def _log_failure(self, where: str, failure: SendFailure, final_attempt: bool, exc: Exception) -> None:
        if failure.kind is FailureKind.BUG:
            log.error("%s: giving up after an unexpected error", where, exc_info=exc)
        elif failure.kind is not FailureKind.TRANSIENT:
            log.warning("%s: giving up, Telegram will not take it (%s)", where, failure.reason)
        elif final_attempt:
            log.warning("%s: giving up, still failing on the final attempt (%s)", where, failure.reason)
        else:
            # An outage is logged once when it starts; the next line is when Telegram takes a reminder again.
            self._telegram_failures += 1
            log_failure = log.warning if self._telegram_failures == 1 else log.debug
            log_failure("cannot send reminders to Telegram (%s); each is retried later", failure.reason)

    async def _tell_owner(self, reminder: DueReminder) -> None:
        quote = textwrap.shorten(reminder.text, QUOTE_LENGTH, placeholder="…")
        try:
            text = self._texts(reminder.user_id)("reminder_failed", text=quote, due=when(reminder.due_at_local))
            await send_text(self.bot, reminder.user_id, text)
        except TelegramAPIError as exc:
            log.warning("could not tell user %s that reminder %s failed: %s", reminder.user_id, reminder.id, exc)
        except Exception:
            log.exception("could not tell user %s that reminder %s failed", reminder.user_id, reminder.id)
        else:
            log.info("told user %s that reminder %s could not be delivered", reminder.user_id, reminder.id)

    async def _report(
        self, http: aiohttp.ClientSession, reminder: DueReminder, what: str, body: dict[str, Any] | None = None
    ) -> None:
        answer = await self._post(http, f"/internal/reminders/{reminder.delivery_key}/{what}", body)
        if answer is None:
            log.warning("reminder %s is gone from the MCP server (was its database reset?); not reported", reminder.id)
            return
        status = DeliveryStatus.model_validate(answer)
        log.debug("reminder %s reported %s: now %s", reminder.id, what, status.status)


def outage_wait(poll_seconds: float) -> wait_exponential:
    """From one poll interval, doubling to MAX_BACKOFF: tenacity caps it, with no overflow however long it lasts."""
    return wait_exponential(multiplier=poll_seconds, max=MAX_BACKOFF)

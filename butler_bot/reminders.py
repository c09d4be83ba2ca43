"""Reminder delivery: claim due reminders from the MCP server, send each to its user, acknowledge it.

The server leases what it hands out, so a reminder that was claimed but never acknowledged (the bot died
mid-way) comes back once the lease ends: delivery is at least once. The ids already sent are kept in the
bot's store, so a reminder that comes back after it was sent is acknowledged again, not sent twice.
A reminder that fell due while the bot was down arrives when it is back, marked late by the server.
"""

import asyncio
import logging
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)

from butler_bot.replies import send_text
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import DEFAULT_LANGUAGE, TextBook
from butler_bot.views import when

log = logging.getLogger(__name__)

CLAIM_LIMIT = 20
MAX_BACKOFF = 10.0
# Telegram will never accept these for that chat: retrying would only repeat the failure.
UNDELIVERABLE = (TelegramForbiddenError, TelegramNotFound, TelegramBadRequest)
# Worth another try: the reminder stays unacknowledged and comes back when its lease ends.
TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter)


class ReminderDelivery:
    def __init__(self, bot: Bot, settings: BotSettings, store: BotStore, textbook: TextBook) -> None:
        self.bot = bot
        self.settings = settings
        self.store = store
        self.textbook = textbook
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="reminder-delivery")

    async def stop(self) -> None:
        """Finish the reminder being sent, then stop; what was claimed but not sent comes back after the lease."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(10):
                await self._task
        except TimeoutError:
            log.warning("reminder delivery did not stop within 10 s; cancelling it")
            self._task.cancel()

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.settings.mcp_auth_token.get_secret_value()}"}
        async with aiohttp.ClientSession(
            base_url=self.settings.mcp_base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as http:
            log.info("delivering reminders from %s", self.settings.mcp_base_url)
            failures = 0
            while not self._stopping.is_set():
                try:
                    for reminder in await self._claim(http):
                        await self._deliver(http, reminder)
                except Exception as exc:
                    failures += 1
                    log_failure = log.warning if failures == 1 else log.debug
                    log_failure("cannot claim reminders from %s: %s; retrying", self.settings.mcp_base_url, exc)
                else:
                    if failures:
                        log.info("reminder delivery works again after %s failed attempt(s)", failures)
                    failures = 0
                delay = min(self.settings.reminder_poll_seconds * 2**failures, MAX_BACKOFF)
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
        log.info("reminder delivery stopped")

    async def _claim(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        body = {"lease_seconds": self.settings.reminder_lease_seconds, "limit": CLAIM_LIMIT}
        async with http.post("/internal/reminders/claim", json=body) as response:
            response.raise_for_status()
            return await response.json()

    async def _acknowledge(self, http: aiohttp.ClientSession, reminder_id: int) -> None:
        try:
            async with http.post(f"/internal/reminders/{reminder_id}/ack") as response:
                response.raise_for_status()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Sent and recorded: when the lease ends it is claimed again and only acknowledged.
            log.warning(
                "reminder %s was sent but not acknowledged (%s); it will be acknowledged later", reminder_id, exc
            )

    def message(self, reminder: dict[str, Any]) -> str:
        texts = self.textbook.texts(self.store.language(reminder["user_id"]) or DEFAULT_LANGUAGE)
        if reminder.get("late"):
            return texts("reminder_late", text=reminder["text"], due=when(reminder.get("due_at_local")))
        return texts("reminder", text=reminder["text"])

    async def _deliver(self, http: aiohttp.ClientSession, reminder: dict[str, Any]) -> None:
        reminder_id, user_id = reminder["id"], reminder["user_id"]
        if not self.store.was_delivered(reminder_id):
            try:
                await send_text(self.bot, user_id, self.message(reminder))
            except TRANSIENT as exc:
                log.warning(
                    "reminder %s not sent to user %s (%s); it comes back after its lease", reminder_id, user_id, exc
                )
                return
            except UNDELIVERABLE as exc:
                log.warning("reminder %s cannot reach user %s (%s); dropping it", reminder_id, user_id, exc)
            else:
                log.info(
                    "reminder %s sent to user %s%s", reminder_id, user_id, " (late)" if reminder.get("late") else ""
                )
            self.store.mark_delivered(reminder_id)
        await self._acknowledge(http, reminder_id)

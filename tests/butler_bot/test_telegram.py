"""Flood control: a 429 is waited out as Telegram asks, a "typing…" action is simply dropped."""

import asyncio
import threading
from typing import Any

import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction, SendMessage

from butler_bot.telegram import RetryAfterMiddleware
from tests.butler_bot.fakes import recording_bot


def flood(method: Any, seconds: int = 1) -> TelegramRetryAfter:
    return TelegramRetryAfter(method=method, message="Too Many Requests: retry after 1", retry_after=seconds)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of this test's thread, skipped; servers of other tests, running in threads, sleep for real."""
    waits: list[float] = []
    real_sleep = asyncio.sleep
    this_thread = threading.get_ident()

    async def fake_sleep(seconds: float, *args: Any) -> Any:
        if threading.get_ident() != this_thread:
            return await real_sleep(seconds, *args)
        waits.append(seconds)
        return args[0] if args else None

    # butler_bot.telegram.asyncio is the asyncio module itself, so the patch reaches every thread.
    monkeypatch.setattr("butler_bot.telegram.asyncio.sleep", fake_sleep)
    return waits


async def test_waits_retry_after_then_sends(slept: list[float]) -> None:
    bot, session = recording_bot()
    session.middleware(RetryAfterMiddleware())
    session.failures += [flood(SendMessage(chat_id=1, text="hi"), 3)]
    await bot.send_message(1, "hi")
    assert slept == [3], f"expected one wait of retry_after=3 s, saw {slept}"
    assert len(session.sent(1)) == 2, "expected the message sent again after the wait"


async def test_gives_up_after_the_attempts_or_for_typing(slept: list[float]) -> None:
    bot, session = recording_bot()
    session.middleware(RetryAfterMiddleware(attempts=2))
    session.failures += [flood(SendMessage(chat_id=1, text="hi"))] * 2
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1, "hi")
    session.failures += [flood(SendChatAction(chat_id=1, action="typing"))]
    with pytest.raises(TelegramRetryAfter):
        await bot.send_chat_action(1, "typing")
    assert len(session.actions(1)) == 1, "expected no retry of a typing action"

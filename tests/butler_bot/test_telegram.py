"""Flood control: a 429 is waited out as Telegram asks, a "typing…" action is simply dropped."""

from typing import Any

import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction, SendMessage

from butler_bot.telegram import RetryAfterMiddleware
from tests.butler_bot.fakes import recording_bot


def flood(method: Any, seconds: int = 1) -> TelegramRetryAfter:
    return TelegramRetryAfter(method=method, message="Too Many Requests: retry after 1", retry_after=seconds)


async def test_waits_retry_after_then_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("butler_bot.telegram.asyncio.sleep", fake_sleep)
    bot, session = recording_bot()
    session.middleware(RetryAfterMiddleware())
    session.failures += [flood(SendMessage(chat_id=1, text="hi"), 3)]
    await bot.send_message(1, "hi")
    assert slept == [3], f"expected one wait of retry_after=3 s, saw {slept}"
    assert len(session.sent(1)) == 2, "expected the message sent again after the wait"


async def test_gives_up_after_the_attempts_or_for_typing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_sleep(seconds: float) -> None:
        pass

    monkeypatch.setattr("butler_bot.telegram.asyncio.sleep", fake_sleep)
    bot, session = recording_bot()
    session.middleware(RetryAfterMiddleware(attempts=2))
    session.failures += [flood(SendMessage(chat_id=1, text="hi"))] * 2
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1, "hi")
    session.failures += [flood(SendChatAction(chat_id=1, action="typing"))]
    with pytest.raises(TelegramRetryAfter):
        await bot.send_chat_action(1, "typing")
    assert len(session.actions(1)) == 1, "expected no retry of a typing action"

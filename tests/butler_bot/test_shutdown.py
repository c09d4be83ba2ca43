"""A shutdown (docker stop, a hot reload) while an answer is in progress: the dispatcher polling the Bot API emulator.

The emulator confirms an update once the next getUpdates carries a higher offset, as Telegram does, and aiogram sends
that getUpdates while the handler still runs: an answer lost at shutdown is a message lost for good.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from butler_bot.settings import BotSettings
from butler_bot.texts import SHIPPED_TEXTS, TextBook
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.polling import polling
from tests.e2e.emulator import client_post

pytestmark = pytest.mark.e2e

USER = 1001
TIMEOUT = 60.0


async def wait_for_model_request(standin: StandIn) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not standin.log:
        assert time.monotonic() < deadline, f"expected the message to reach the model within {TIMEOUT:.0f} s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("grace", "expected"),
    [
        (30.0, "All done, slowly."),
        (0.5, TextBook(SHIPPED_TEXTS).texts("en")("restarted_mid_answer")),
    ],
    ids=["finished-within-the-grace", "cut-short-and-told"],
)
async def test_a_shutdown_during_an_answer_loses_no_message(
    grace: float,
    expected: str,
    polling_settings: Callable[..., BotSettings],
    standin: StandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = polling_settings(allowed_user_ids=(USER,), shutdown_grace_seconds=grace)
    url, token = settings.telegram_api_url, settings.telegram_bot_token.get_secret_value()
    standin.script(default={"content": "All done, slowly.", "delay": 3})
    caplog.set_level(logging.INFO)
    async with polling(settings):
        await client_post(url, "/sendMessage", {"token": token, "user_id": USER, "text": "take your time"})
        await wait_for_model_request(standin)

    updates = await client_post(url, "/getUpdates", {"token": token, "chat_id": USER})
    assert [update["message"]["text"] for update in updates] == [expected], (
        "expected one reply, sent before the clients closed"
    )
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, f"expected a clean shutdown; saw errors {errors}"

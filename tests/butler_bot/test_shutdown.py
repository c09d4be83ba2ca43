"""A shutdown (docker stop, a hot reload) while an answer is in progress: the dispatcher polling the Bot API emulator.

The emulator confirms an update once the next getUpdates carries a higher offset, as Telegram does, and aiogram sends
that getUpdates while the handler still runs: an answer lost at shutdown is a message lost for good.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiogram import Dispatcher

from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import SHIPPED_TEXTS, TextBook
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import release_routers
from tests.e2e.emulator import client_post, make_bot, new_token
from tests.mcp_server.conftest import TOKEN, RunningServer

pytestmark = pytest.mark.e2e

USER = 1001
TIMEOUT = 60.0


@asynccontextmanager
async def polling(settings: BotSettings) -> AsyncIterator[Dispatcher]:
    """The bot's dispatcher polling; on leaving, its clients close after polling stopped, as in `butler_bot.app`."""
    store = BotStore.open(settings.store_path, settings.history_turns)
    release_routers()
    backends = Backends(settings, store)
    dp = build_dispatcher(settings, store, TextBook(settings.texts_file), backends)
    bot = make_bot(settings.telegram_api_url, settings.telegram_bot_token.get_secret_value())
    task = asyncio.create_task(dp.start_polling(bot, polling_timeout=2, handle_signals=False))
    try:
        yield dp
    finally:
        await asyncio.gather(task, return_exceptions=True)
        await backends.close()
        await bot.session.close()
        store.close()


async def wait_for_model_request(standin: StandIn) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not standin.log:
        assert time.monotonic() < deadline, f"expected the message to reach the model within {TIMEOUT:.0f} s"
        await asyncio.sleep(0.05)


async def messages_to(url: str, token: str) -> list[str]:
    return [
        update["message"]["text"] for update in await client_post(url, "/getUpdates", {"token": token, "chat_id": USER})
    ]


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
    emulator_url: str,
    make_settings: Callable[..., BotSettings],
    standin: StandIn,
    mcp_server: RunningServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = new_token()
    settings = make_settings(
        allowed_user_ids=(USER,),
        telegram_bot_token=token,
        telegram_api_url=emulator_url,
        llm_base_url=standin.url,
        mcp_url=mcp_server.mcp_url,
        mcp_auth_token=TOKEN,
        shutdown_grace_seconds=grace,
    )
    standin.script(default={"content": "All done, slowly.", "delay": 3})
    caplog.set_level(logging.INFO)
    async with polling(settings) as dp:
        await client_post(emulator_url, "/sendMessage", {"token": token, "user_id": USER, "text": "take your time"})
        await wait_for_model_request(standin)
        await asyncio.wait_for(dp.stop_polling(), timeout=TIMEOUT)

    assert await messages_to(emulator_url, token) == [expected], "expected one reply, sent before the clients closed"
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, f"expected a clean shutdown; saw errors {errors}"

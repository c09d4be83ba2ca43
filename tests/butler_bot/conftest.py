"""Fixtures for the bot's unit tests: the scripted LLM stand-in served in-process, and settings that use it."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from butler_bot.settings import BotSettings
from tests.butler_bot.fakes import BOT_TOKEN
from tests.e2e.llm_standin.server import LOG, SCRIPT, make_app


class StandIn:
    """The stand-in LLM at `url`: set its script, read what it was asked."""

    def __init__(self, app: web.Application, url: str) -> None:
        self.app = app
        self.url = url

    def script(self, *rules: dict[str, Any], default: dict[str, Any] | None = None) -> None:
        self.app[SCRIPT].clear()
        self.app[SCRIPT].update(rules=list(rules), **({"default": default} if default else {}))

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.app[LOG]


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    app = make_app()
    async with TestServer(app, host="127.0.0.1") as server:
        yield StandIn(app, str(server.make_url("/v1")))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., BotSettings]:
    def build(**overrides: Any) -> BotSettings:
        values: dict[str, Any] = {
            "telegram_bot_token": BOT_TOKEN,
            "mcp_auth_token": "unit-test-token-0123456789",
            "butler_env": "development",
            "llm_base_url": "http://127.0.0.1:9/v1",
            "llm_timeout": 3,
            "store_path": tmp_path / "bot.sqlite3",
            "allowed_user_ids": (1001,),
        }
        return BotSettings(**(values | overrides))

    return build

"""Fixtures for the bot's tests: the scripted LLM stand-in and the real MCP server, both served in-process."""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from butler_bot.settings import BotSettings
from butler_bot.tools import McpTools
from tests.butler_bot.fakes import BOT_TOKEN
from tests.e2e.emulator import new_token, running_emulator
from tests.e2e.llm_standin.server import LOG, SCRIPT, make_app
from tests.mcp_server.conftest import TOKEN, RunningServer, serve, server_settings

# Each test acts as a user of its own, so tests sharing the server never see each other's tasks.
_user_ids = itertools.count(700_001)


class StandIn:
    """The stand-in LLM at `url`: set its script, read what it was asked."""

    def __init__(self, app: web.Application, url: str) -> None:
        self.app = app
        self.url = url

    def script(self, *rules: dict[str, Any], default: dict[str, Any] | None = None, **server: Any) -> None:
        """Replace the script; `server` sets the stand-in server itself (n_ctx, tools_template, loading)."""
        self.app[SCRIPT].clear()
        self.app[SCRIPT].update(rules=list(rules), **({"default": default} if default else {}), **server)

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
            "llm_timeout": 10,
            "store_path": tmp_path / "bot.sqlite3",
            "allowed_user_ids": (1001,),
        }
        return BotSettings(**(values | overrides))

    return build


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The Bot API emulator in Docker; each test polls it with a bot token of its own (new_token)."""
    with running_emulator() as url:
        yield url


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The real MCP server (uvicorn, SQLite) on a loopback port, for the bot's tool client."""
    database = tmp_path_factory.mktemp("bot-mcp") / "butler.db"
    with serve(server_settings(f"sqlite+aiosqlite:///{database}")) as running:
        yield running


@pytest.fixture
def user_id() -> int:
    return next(_user_ids)


@pytest.fixture
async def mcp_tools(mcp_server: RunningServer, make_settings: Callable[..., BotSettings]) -> AsyncIterator[McpTools]:
    """The bot's real MCP client, connected to the real server."""
    tools = McpTools(make_settings(mcp_url=mcp_server.mcp_url, mcp_auth_token=TOKEN))
    yield tools
    await tools.close()


@pytest.fixture
def polling_settings(
    make_settings: Callable[..., BotSettings], emulator_url: str, standin: StandIn, mcp_server: RunningServer
) -> Callable[..., BotSettings]:
    """Settings for a bot polling the emulator with a token of its own, the stand-in model and the MCP server."""

    def build(**overrides: Any) -> BotSettings:
        values = {
            "telegram_bot_token": new_token(),
            "telegram_api_url": emulator_url,
            "llm_base_url": standin.url,
            "mcp_url": mcp_server.mcp_url,
            "mcp_auth_token": TOKEN,
        }
        return make_settings(**(values | overrides))

    return build

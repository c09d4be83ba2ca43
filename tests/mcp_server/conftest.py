"""Fixtures that start the real MCP server (uvicorn on a loopback port) and connect real MCP clients to it."""

import itertools
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_server.db import Database
from mcp_server.settings import McpServerSettings
from mcp_server.web import create_app

TOKEN = "test-token-" + secrets.token_hex(8)
POSTGRES_URL_VARIABLE = "BUTLER_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    database_url: str

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"


@contextmanager
def serve(settings: McpServerSettings, port: int = 0) -> Iterator[RunningServer]:
    """Run the app with uvicorn on 127.0.0.1 and `port` (ephemeral by default), in a thread, lifespan included."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mcp-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "expected the MCP server to start; uvicorn exited (see the log above)"
        assert time.monotonic() < deadline, "expected the MCP server to start within 30 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings.database_url.get_secret_value())
    finally:
        server.should_exit = True
        thread.join(10)


def server_settings(database_url: str, **overrides: Any) -> McpServerSettings:
    return McpServerSettings(
        mcp_auth_token=TOKEN, butler_env="development", database_url=database_url, log_level="WARNING", **overrides
    )


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    database = tmp_path_factory.mktemp("sqlite") / "butler.db"
    with serve(server_settings(f"sqlite+aiosqlite:///{database}")) as running:
        yield running


POSTGRES_MISSING = (
    f"{POSTGRES_URL_VARIABLE} is not set: the PostgreSQL storage tests need a server "
    "(e.g. postgresql+asyncpg://butler:butler@127.0.0.1:5432/butler_test; .ci/run starts one)"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        # In CI a missing database must fail loudly, never pass as a skip.
        if in_ci():
            pytest.fail(POSTGRES_MISSING)
        pytest.skip(POSTGRES_MISSING)
    return url


async def drop_butler_tables(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        tables = "reminders, reminder_series, notes, tasks, users, alembic_version"
        await connection.execute(text(f"DROP TABLE IF EXISTS {tables} CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[RunningServer]:
    url = McpServerSettings(mcp_auth_token=TOKEN, database_url=postgres_url()).database_url.get_secret_value()
    # From an empty database, so the migrations run from the first revision as on a new deployment.
    await drop_butler_tables(url)
    with serve(server_settings(url)) as running:
        yield running


@pytest.fixture(scope="session")
def server(sqlite_server: RunningServer) -> RunningServer:
    """The server the storage tests run against; tests/mcp_server/test_postgres.py swaps in PostgreSQL."""
    return sqlite_server


@pytest.fixture
async def db(server: RunningServer) -> AsyncIterator[Database]:
    """Direct access to the server's database, for arranging what no tool can (a reminder already due)."""
    database = Database(server.database_url)
    yield database
    await database.close()


# Random per run: a PostgreSQL database may keep rows from earlier runs; every test gets users of its own.
_user_ids = itertools.count(secrets.randbelow(2**40) * 1000 + 1)


@pytest.fixture
def new_user_id() -> Callable[[], int]:
    return lambda: next(_user_ids)


@asynccontextmanager
async def mcp_client(
    url: str, *, user_id: int | None = None, token: str = TOKEN, mode: str = "auto", **headers: str
) -> AsyncIterator[Client]:
    """An SDK client over Streamable HTTP, sending the bearer token and (if given) the Telegram user header."""
    sent = {"Authorization": f"Bearer {token}", **headers}
    if user_id is not None:
        sent["X-Telegram-User-Id"] = str(user_id)
    async with (
        httpx2.AsyncClient(headers=sent, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


class UserSession:
    """An MCP client acting for one Telegram user, with assertions that say which call did what."""

    def __init__(self, client: Client, user_id: int) -> None:
        self.client = client
        self.user_id = user_id

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert not result.is_error, f"expected {tool}({arguments}) to succeed, got the error: {text}"
        assert result.structured_content is not None, f"expected structured output from {tool}"
        return result.structured_content

    async def fails(self, tool: str, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert result.is_error, f"expected {tool}({arguments}) to fail, got: {result.structured_content}"
        return text


UserFactory = Callable[..., AbstractAsyncContextManager[UserSession]]


@pytest.fixture
def as_user(server: RunningServer, new_user_id: Callable[[], int]) -> UserFactory:
    """`async with as_user() as alice:` connects a new user (or the given user_id) to the server."""

    @asynccontextmanager
    async def connect(user_id: int | None = None, **options: Any) -> AsyncIterator[UserSession]:
        user = user_id or new_user_id()
        async with mcp_client(server.mcp_url, user_id=user, **options) as client:
            yield UserSession(client, user)

    return connect

"""The butler's tools, from the MCP server, called on behalf of one Telegram user at a time.

Each user gets their own MCP client whose every request carries `X-Telegram-User-Id`: the header is fixed
when the connection opens, so nothing the model writes can make a call act for someone else. A client lives
in a task of its own (the SDK's task groups must be entered and left in one task); when the server goes away
that task ends, and the user's next call opens a fresh connection.

Each failure is classified once: a connection that is gone or a server that fails raises `ToolsUnavailable` and
drops the connection, so the next call reconnects; a request the server refuses (a JSON-RPC error) and a result
that does not parse or does not match the tool's output schema become a tool error the model can act on.
"""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CONNECTION_CLOSED, INTERNAL_ERROR, REQUEST_TIMEOUT, CallToolResult, Tool
from pydantic import ValidationError

from butler_bot.core import ToolResult, ToolSpec, ToolsUnavailable
from butler_bot.settings import BotSettings
from butler_bot.tool_schemas import openai_tools

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
# Connections opened at once: many users arriving together would otherwise all time out on a busy CPU.
OPENING_AT_ONCE = 4
# What a call on a broken connection raises besides MCPError: closed streams, HTTP errors.
TRANSPORT_ERRORS = (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.HTTPError)
# MCPError codes the SDK itself uses for a connection that is gone, a server that does not answer in time, and
# an HTTP error status (a 5xx, a refused token); every other code is the server refusing this request.
UNREACHABLE_CODES = frozenset({CONNECTION_CLOSED, REQUEST_TIMEOUT, INTERNAL_ERROR})


def result_of(call: CallToolResult) -> ToolResult:
    texts = [block.text for block in call.content if getattr(block, "type", None) == "text"]
    data = call.structured_content if isinstance(call.structured_content, dict) else None
    text = json.dumps(data, ensure_ascii=False) if data is not None and not call.is_error else "\n".join(texts)
    return ToolResult(text=text, is_error=bool(call.is_error), data=data)


class UserConnection:
    """One user's MCP client, kept open in its own task until closed or broken."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self._url, self._headers, self._timeout = url, headers, timeout
        self._client: Client | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._client is not None

    async def open(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready), name="mcp-connection")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await ready
        except TimeoutError:
            self._task.cancel()
            raise ToolsUnavailable(f"no answer from {self._url} within {CONNECT_TIMEOUT:g} s") from None

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        try:
            async with (
                httpx2.AsyncClient(headers=self._headers, timeout=self._timeout) as http,
                Client(
                    streamable_http_client(self._url, http_client=http), read_timeout_seconds=self._timeout
                ) as client,
            ):
                self._client = client
                ready.set_result(None)
                await self._closing.wait()
        except Exception as exc:
            reason = describe(exc)
            if not ready.done():
                ready.set_exception(ToolsUnavailable(reason))
            elif not self._closing.is_set():
                log.warning("MCP connection to %s closed: %s", self._url, reason)
        finally:
            self._client = None

    def _connected(self) -> Client:
        if self._client is None:
            raise ToolsUnavailable("the MCP connection is closed")
        return self._client

    def _broken(self, exc: BaseException) -> ToolsUnavailable:
        """Drop this connection, so the user's next call opens a fresh one; the caller logs the failure."""
        self._client = None
        self._closing.set()
        return ToolsUnavailable(describe(exc))

    async def list_tools(self) -> list[Tool]:
        try:
            return list((await self._connected().list_tools()).tools)
        except MCPError as exc:
            if exc.code in UNREACHABLE_CODES:
                raise self._broken(exc) from exc
            raise ToolsUnavailable(f"the MCP server refused to list its tools: {exc.message}") from exc
        except (RuntimeError, ValidationError) as exc:
            raise ToolsUnavailable(f"the MCP server sent a malformed tool list: {describe(exc)}") from exc
        except TRANSPORT_ERRORS as exc:
            raise self._broken(exc) from exc

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        try:
            return result_of(await self._connected().call_tool(name, arguments))
        except MCPError as exc:
            if exc.code in UNREACHABLE_CODES:
                raise self._broken(exc) from exc
            log.warning("the MCP server refused %s (JSON-RPC error %s): %s", name, exc.code, exc.message)
            return ToolResult(text=f"the tool server refused the call: {exc.message}", is_error=True, data=None)
        except (RuntimeError, ValidationError) as exc:
            # The SDK raises RuntimeError for a result that breaks the tool's output schema.
            problem = describe(exc)
            log.warning("MCP tool %s returned a malformed result: %s", name, problem)
            return ToolResult(
                text=f"{name} returned a malformed result ({problem}); it may or may not have run.",
                is_error=True,
                data=None,
            )
        except TRANSPORT_ERRORS as exc:
            raise self._broken(exc) from exc

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(5):
                    await self._task
            except TimeoutError:
                self._task.cancel()


def tool_specs(tools: list[Tool]) -> list[ToolSpec]:
    """The tools as the model sees them; a tool without a read-only hint is taken to change something."""
    return [
        ToolSpec(tool.name, wire["function"], read_only=bool(tool.annotations and tool.annotations.read_only_hint))
        for tool, wire in zip(tools, openai_tools(tools), strict=True)
    ]


def describe(exc: BaseException) -> str:
    """The innermost cause of a failure, unwrapped from task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class McpTools:
    """Connections per user, and the tool list (the same for everyone) cached for a while."""

    def __init__(self, settings: BotSettings) -> None:
        self._url = settings.mcp_url
        self._token = settings.mcp_auth_token.get_secret_value()
        self._timeout = settings.mcp_timeout
        self._cache_seconds = settings.tools_cache_seconds
        self._connections: dict[int, UserConnection] = {}
        self._connecting: dict[int, asyncio.Lock] = {}
        self._opening = asyncio.Semaphore(OPENING_AT_ONCE)
        self._tools: list[Tool] = []
        self._specs: list[ToolSpec] = []
        self._tools_fetched_at = float("-inf")

    async def _connection(self, user_id: int) -> UserConnection:
        lock = self._connecting.setdefault(user_id, asyncio.Lock())
        async with lock:
            connection = self._connections.get(user_id)
            if connection is None or not connection.alive:
                headers = {"Authorization": f"Bearer {self._token}", "X-Telegram-User-Id": str(user_id)}
                connection = UserConnection(self._url, headers, self._timeout)
                # CONNECT_TIMEOUT runs from the turn of this connection, not from the queue for it.
                async with self._opening:
                    await connection.open()
                self._connections[user_id] = connection
            return connection

    async def list_tools(self, user_id: int) -> list[Tool]:
        if time.monotonic() - self._tools_fetched_at > self._cache_seconds:
            self._tools = await (await self._connection(user_id)).list_tools()
            self._specs = tool_specs(self._tools)
            self._tools_fetched_at = time.monotonic()
        return self._tools

    async def specs(self, user_id: int) -> list[ToolSpec]:
        await self.list_tools(user_id)
        return self._specs

    def forget_tools(self) -> None:
        """Fetch the list again next time (the model named a tool we do not know: the server may have changed)."""
        self._tools_fetched_at = float("-inf")

    async def call(self, user_id: int, name: str, arguments: dict[str, Any]) -> ToolResult:
        return await (await self._connection(user_id)).call_tool(name, arguments)

    def for_user(self, user_id: int) -> "UserTools":
        return UserTools(self, user_id)

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(connection.close() for connection in connections))


@dataclass(frozen=True)
class UserTools:
    """The tools bound to one user: what an agent run gets, so it has no way to name another user."""

    tools: McpTools
    user_id: int

    async def specs(self) -> list[ToolSpec]:
        return await self.tools.specs(self.user_id)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        return await self.tools.call(self.user_id, name, arguments)

    def forget_tools(self) -> None:
        self.tools.forget_tools()

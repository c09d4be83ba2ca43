"""The bot's MCP client against the real MCP server: each failure is classified once.

A server that goes away is "tools unavailable" and the next call reconnects; a request the server refuses, and a
result that does not parse or breaks the tool's output schema, are tool errors the model can act on.
"""

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from butler_bot.core import ToolsUnavailable
from butler_bot.settings import BotSettings
from butler_bot.tools import McpTools
from tests.mcp_server.conftest import TOKEN, RunningServer, serve, server_settings

# Rewrites the JSON-RPC result of one tools/call, as a server with a bug (or a newer version) would send it.
Tamper = Callable[[dict[str, Any]], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_server_that_goes_away_is_unavailable_and_the_next_call_reconnects(
    make_settings: Callable[..., BotSettings], tmp_path: Path, user_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = server_settings(f"sqlite+aiosqlite:///{tmp_path / 'butler.db'}")
    tools = McpTools(make_settings(mcp_url=f"http://127.0.0.1:{port}/mcp", mcp_auth_token=TOKEN))
    try:
        with serve(settings, port):
            added = await tools.call(user_id, "tasks_add", {"title": "survive a restart"})
            assert not added.is_error, f"expected the task added, saw {added.text}"
        with pytest.raises(ToolsUnavailable):
            await tools.call(user_id, "tasks_list", {})
        with serve(settings, port):
            listed = await tools.call(user_id, "tasks_list", {})
        assert not listed.is_error and listed.data is not None, f"expected a reconnect and the list, saw {listed.text}"
        titles = [task["title"] for task in listed.data["tasks"]]
        assert titles == ["survive a restart"], f"expected the task kept across the restart, saw {titles}"
    finally:
        await tools.close()
    assert "MCP connection" not in caplog.text, f"expected the dropped connection not logged twice:\n{caplog.text}"


async def test_a_request_the_server_refuses_is_a_tool_error_not_server_down(
    mcp_tools: McpTools, user_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Telegram ids start at 1: the server refuses user 0 with a JSON-RPC error, before any tool runs.
    refused = await mcp_tools.call(0, "tasks_list", {})
    assert refused.is_error and "X-Telegram-User-Id" in refused.text, f"expected the refusal, saw {refused}"
    again = await mcp_tools.call(0, "tasks_list", {})
    assert again == refused, f"expected the same refusal on the same connection, saw {again}"
    assert caplog.text.count("refused tasks_list") == 2, f"expected one log line per refusal:\n{caplog.text}"
    assert not (await mcp_tools.call(user_id, "tasks_list", {})).is_error, "expected other users unaffected"


@pytest.fixture
async def tampering_proxy(mcp_server: RunningServer) -> AsyncIterator[tuple[str, list[Tamper]]]:
    """The real server behind a proxy that passes everything through, except that it applies the next queued
    tamper to the next tools/call result."""
    tampers: list[Tamper] = []

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx2.AsyncClient(timeout=30) as http:
            upstream = await http.request(request.method, mcp_server.mcp_url, content=body, headers=headers)
        content = upstream.content
        if body and json.loads(body).get("method") == "tools/call" and tampers:
            assert upstream.headers["content-type"].startswith("application/json"), upstream.headers
            answer = upstream.json()
            tampers.pop(0)(answer["result"])
            content = json.dumps(answer).encode()
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "mcp-session-id")}
        return web.Response(status=upstream.status_code, body=content, headers=passed)

    app = web.Application()
    app.router.add_route("*", "/mcp", forward)
    async with TestServer(app, host="127.0.0.1") as proxy:
        yield str(proxy.make_url("/mcp")), tampers


def break_the_schema(result: dict[str, Any]) -> None:
    result["structuredContent"]["tasks"] = "none"


def break_the_result(result: dict[str, Any]) -> None:
    result["content"] = "not a list of blocks"


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (break_the_schema, "Invalid structured content returned by tool tasks_list"),
        (break_the_result, "ValidationError"),
    ],
)
async def test_a_malformed_result_is_a_tool_error_naming_the_problem_logged_once(
    tampering_proxy: tuple[str, list[Tamper]],
    make_settings: Callable[..., BotSettings],
    user_id: int,
    caplog: pytest.LogCaptureFixture,
    tamper: Tamper,
    problem: str,
) -> None:
    url, tampers = tampering_proxy
    tools = McpTools(make_settings(mcp_url=url, mcp_auth_token=TOKEN))
    try:
        tampers.append(tamper)
        with caplog.at_level(logging.WARNING):
            result = await tools.call(user_id, "tasks_list", {})
        assert result.is_error and problem in result.text, f"expected a tool error naming {problem!r}, saw {result}"
        assert caplog.text.count("malformed result") == 1, f"expected one log line:\n{caplog.text}"
        after = await tools.call(user_id, "tasks_list", {})
        assert not after.is_error, f"expected the next call to work on the same connection, saw {after.text}"
    finally:
        await tools.close()

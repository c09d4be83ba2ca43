"""A real MCP client (the official SDK) for the stack's published endpoint."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.stack import MCP_TOKEN, Stack


async def _describe(url: str, token: str, user_id: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "X-Telegram-User-Id": str(user_id)}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        return {
            "instructions": client.instructions,
            "version": client.server_info.version if client.server_info else None,
            "tools": {tool.name: tool.description for tool in tools.tools},
        }


def describe_server(port: int, token: str, user_id: int = 1) -> dict[str, Any]:
    """What a client sees on connecting: instructions, version and each tool's description."""
    return asyncio.run(_describe(f"http://127.0.0.1:{port}/mcp", token, user_id))


@asynccontextmanager
async def mcp_client(stack: Stack, user_id: int) -> AsyncIterator[Client]:
    """The official MCP client on the stack's published endpoint, acting for one Telegram user."""
    headers = {"Authorization": f"Bearer {MCP_TOKEN}", "X-Telegram-User-Id": str(user_id)}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(f"http://127.0.0.1:{stack.mcp_port}/mcp", http_client=http),
            read_timeout_seconds=30,
        ) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error and result.structured_content is not None, (
        f"expected {tool}({arguments}) to succeed; saw {result.content}"
    )
    return result.structured_content


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")

"""A real MCP client (the official SDK) for the stack's published endpoint."""

import asyncio
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


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

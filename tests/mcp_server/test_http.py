"""The HTTP surface: bearer auth on /mcp and /internal, open /health, Host checks; bad requests: test_bad_input.py."""

import json
from typing import Any

import httpx2
import pytest

from mcp_server.tools.catalog import TOOL_NAMES
from tests.mcp_server.conftest import TOKEN, RunningServer, mcp_client

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The headers a 2026-07-28 client sends with each JSON-RPC request.
MODERN = {
    **AUTH,
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2026-07-28",
    "X-Telegram-User-Id": "4242",
}
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": META}}


def post_rpc(server: RunningServer, body: dict[str, Any], **headers: str) -> httpx2.Response:
    sent = {**MODERN, "Mcp-Method": body["method"], **headers}
    if body["method"] == "tools/call":
        sent["Mcp-Name"] = body["params"]["name"]
    return httpx2.post(server.mcp_url, content=json.dumps(body), headers=sent, timeout=10)


def test_health_is_open(server: RunningServer) -> None:
    response = httpx2.get(f"{server.base_url}/health")
    assert response.status_code == 200 and response.json()["status"] == "ok", response.text


@pytest.mark.parametrize(
    "path", ["/mcp", "/internal/reminders/claim", "/internal/reminders/1/ack", "/openapi.json", "/docs", "/anything"]
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_missing_or_wrong_token_gets_401(server: RunningServer, path: str, authorization: str | None) -> None:
    headers = {**MODERN, "Authorization": authorization} if authorization else {"Content-Type": "application/json"}
    response = httpx2.post(f"{server.base_url}{path}", content=json.dumps(rpc("tools/list")), headers=headers)
    assert response.status_code == 401, f"expected 401 for POST {path} with {authorization!r}: {response.status_code}"
    response = httpx2.get(f"{server.base_url}{path}", headers=headers)
    assert response.status_code == 401, f"expected 401 for {path} with {authorization!r}, got {response.status_code}"
    assert response.headers["WWW-Authenticate"] == "Bearer" and "MCP_AUTH_TOKEN" in response.text, response.text


def test_mcp_answers_at_mcp_itself_without_a_redirect(server: RunningServer) -> None:
    response = post_rpc(server, rpc("tools/list"))
    assert response.status_code == 200, f"expected 200 with no redirect, got {response.status_code}"
    assert "tasks_add" in response.text


@pytest.mark.parametrize("host", ["mcp-server:8000", "mcp-server", "localhost:8000", "127.0.0.1:8000"])
def test_compose_service_name_and_loopback_hosts_are_accepted(server: RunningServer, host: str) -> None:
    assert post_rpc(server, rpc("tools/list"), Host=host).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "mcp-server.evil.example"])
def test_a_foreign_host_header_gets_421(server: RunningServer, host: str) -> None:
    response = post_rpc(server, rpc("tools/list"), Host=host)
    assert response.status_code == 421, f"expected the Host check to refuse {host}, got {response.status_code}"


async def test_legacy_clients_with_sessions_work_too(server: RunningServer) -> None:
    """Clients from before 2026-07-28 (the Inspector, desktop hosts) use the initialize handshake."""
    async with mcp_client(server.mcp_url, user_id=777_000_001, mode="legacy") as client:
        assert client.protocol_version != "2026-07-28", client.protocol_version
        added = await client.call_tool("tasks_add", {"title": "from a legacy client"})
        assert not added.is_error and added.structured_content["title"] == "from a legacy client", added


async def test_tools_describe_themselves_and_keep_typed_bounded_parameters(server: RunningServer) -> None:
    async with mcp_client(server.mcp_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools.keys() == TOOL_NAMES, sorted(tools)
    for tool in tools.values():
        assert tool.description and tool.output_schema, f"expected {tool.name} to describe itself and its result"
        assert "user_id" not in tool.input_schema.get("properties", {}), f"{tool.name} exposes the user id"
    # Names tell most parameters; a time or a timezone needs its format said.
    for name, parameter in [("tasks_add", "due"), ("tasks_update", "due"), ("reminders_create", "at")]:
        described = tools[name].input_schema["properties"][parameter].get("description", "")
        assert "ISO" in described, f"expected {name}.{parameter} to name its format, got {described!r}"
    assert "IANA" in tools["time_set_timezone"].input_schema["properties"]["timezone"]["description"]
    # The model gets compact schemas; MCP clients still get every bound the server enforces.
    task_id = tools["tasks_complete"].input_schema["properties"]["task_id"]
    assert task_id["minimum"] == 1 and task_id["maximum"] == 2**31 - 1, task_id
    title = tools["tasks_add"].input_schema["properties"]["title"]
    assert title["minLength"] == 1 and title["maxLength"] > 1, title

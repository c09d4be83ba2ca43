"""Property-based fuzzing of the HTTP surface: every generated request is answered, none with a 500.

Hypothesis drives well over 1,000 requests: garbage bytes, arbitrary JSON, JSON-RPC envelopes with any method,
and tool calls whose arguments have wrong types, missing fields, impossible dates and over-long text. The server
must answer each one (a JSON-RPC error, a tool error or a result) and still be healthy afterwards.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server.tools.catalog import TOOL_NAMES
from tests.mcp_server.conftest import TOKEN, RunningServer, serve, server_settings

EXAMPLES = 1100
PARAMETER_NAMES = [
    "title", "notes", "due", "priority", "show", "text", "limit", "task_id", "clear_due", "reopen", "note_id",
    "query", "at", "after_minutes", "reminder_id", "timezone",
]  # fmt: skip
METHODS = ["tools/call", "tools/list", "server/discover", "initialize", "ping", "resources/list", "prompts/get"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "\x00", "2031-02-30", "2031-13-01T25:61", "9999-12-31", "0000-01-01", "tomorrow"]),
    st.sampled_from(["Europe/Berlin", "Mars/Base", "../../etc/passwd", "%", "_", "'; DROP TABLE tasks; --"]),
    st.integers(min_value=1, max_value=6000).map(lambda n: "x" * n),
    st.dates().map(str),
    st.datetimes().map(lambda moment: moment.isoformat()),
)
argument_values = st.one_of(
    nasty_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    json_values,
)
tool_arguments = (
    st.dictionaries(st.sampled_from(PARAMETER_NAMES) | st.text(max_size=10), argument_values, max_size=5) | json_values
)
user_headers = st.one_of(
    st.just({"X-Telegram-User-Id": "31337"}),
    st.just({}),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: {"X-Telegram-User-Id": str(n)}),
    st.from_regex(r"[A-Za-z0-9+\-.]{0,12}", fullmatch=True).map(lambda value: {"X-Telegram-User-Id": value}),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A request body and its headers; mostly well-formed enough to reach the tools, sometimes not at all."""

    def mostly() -> bool:
        return draw(st.integers(min_value=0, max_value=9)) < 8

    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28" if mostly() else draw(st.sampled_from(["2025-06-18", "1999-01-01"])),
        **(draw(user_headers) if not mostly() else {"X-Telegram-User-Id": "31337"}),
    }
    kind = draw(st.sampled_from(["call", "call", "call", "call", "envelope", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300)), headers
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), headers
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    request_id = draw(st.integers()) if mostly() else draw(st.text(max_size=8) | st.none() | st.floats())
    if kind == "envelope":
        method = draw(st.sampled_from(METHODS) | st.text(max_size=20))
        params = draw(st.one_of(st.just({"_meta": meta}), json_values))
    else:
        method = "tools/call"
        name = draw(st.sampled_from(sorted(TOOL_NAMES))) if mostly() else draw(st.text(max_size=20))
        params = {"name": name, "arguments": draw(tool_arguments), "_meta": meta}
    body: dict[str, Any] = {"jsonrpc": "2.0" if mostly() else draw(json_values), "id": request_id}
    body |= {"method": method, "params": params}
    # Mostly the headers a real client derives from the body; sometimes ones that disagree with it.
    if mostly():
        headers["Mcp-Method"] = method if isinstance(method, str) else ""
        if method == "tools/call" and isinstance(params, dict) and isinstance(params.get("name"), str):
            headers["Mcp-Name"] = params["name"]
    safe_headers = {name: value for name, value in headers.items() if value.isascii() and value.isprintable()}
    return json.dumps(body).encode(), safe_headers


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own: the rows the fuzzer leaves behind never meet other tests."""
    database = Path(tmp_path_factory.mktemp("fuzz")) / "butler.db"
    with serve(server_settings(f"sqlite+aiosqlite:///{database}")) as running:
        yield running


def test_every_generated_request_is_answered_and_the_server_stays_healthy(fuzz_server: RunningServer) -> None:
    answered: list[int] = []
    with httpx2.Client(base_url=fuzz_server.base_url, timeout=10) as http:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests())
        def answered_without_a_server_error(request: tuple[bytes, dict[str, str]]) -> None:
            body, headers = request
            response = http.post("/mcp", content=body, headers=headers)
            answered.append(response.status_code)
            assert response.status_code < 500, f"{response.status_code} for {body[:300]!r}: {response.text[:300]}"
            assert "Traceback" not in response.text, response.text
            if response.headers.get("content-type", "").startswith("application/json"):
                reply = response.json()
                assert "result" in reply or "error" in reply, reply

        answered_without_a_server_error()

        assert len(answered) >= 1000, f"expected at least 1,000 requests, sent {len(answered)}"
        assert http.get("/health").json()["status"] == "ok"
        calls = [code for code in answered if code == 200]
        assert len(calls) > len(answered) // 4, f"expected many requests to reach the tools: {len(calls)} did"

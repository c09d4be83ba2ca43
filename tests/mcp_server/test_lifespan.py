"""The server as the image runs it: `uvicorn mcp_server.app:app`, configured by environment and YAML."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from mcp_server.settings import McpServerSettings
from shared.settings import load_settings
from tests.mcp_server.conftest import TOKEN, mcp_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(**variables: str) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")}
    return {**keep, "MCP_AUTH_TOKEN": TOKEN, "BUTLER_ENV": "development", **variables}


@contextmanager
def uvicorn_app(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "mcp_server.app:app", "--host=127.0.0.1", f"--port={port}"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"expected the server to start; it exited {process.returncode}:\n{output}")
            assert time.monotonic() < deadline, "expected /health within 60 s"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_start_migrates_serves_tools_and_stops_cleanly(tmp_path: Path) -> None:
    database = tmp_path / "butler.db"
    with uvicorn_app(environment(DATABASE_URL=f"sqlite+aiosqlite:///{database}")) as (url, process):
        async with mcp_client(f"{url}/mcp", user_id=5) as client:
            result = await client.call_tool("tasks_add", {"title": "survives a restart"})
        assert not result.is_error, result
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn re-raises SIGTERM once it has shut down gracefully.
    assert process.returncode in (0, -signal.SIGTERM), f"expected a clean exit, got {process.returncode}:\n{output}"
    assert "migrated from schema revision None to 0003" in output, output
    assert "Application shutdown complete" in output, output
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT title FROM tasks").fetchall() == [("survives a restart",)]

    with uvicorn_app(environment(DATABASE_URL=f"sqlite+aiosqlite:///{database}")) as (url, process):
        async with mcp_client(f"{url}/mcp", user_id=5) as client:
            listed = await client.call_tool("tasks_list", {})
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert [task["title"] for task in listed.structured_content["tasks"]] == ["survives a restart"], listed
    assert "is at schema revision 0003" in output, "expected a second start to find the schema current"


def test_an_unreachable_database_stops_start_up_with_the_reason() -> None:
    env = environment(DATABASE_URL="postgresql://butler:secret@127.0.0.1:1/butler")
    command = [sys.executable, "-m", "uvicorn", "mcp_server.app:app", "--host=127.0.0.1", f"--port={free_port()}"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, "expected start-up to fail"
    reason = next((line for line in done.stderr.splitlines() if "cannot use the database" in line), None)
    assert reason and "127.0.0.1:1" in reason and "secret" not in done.stderr, done.stderr


async def test_enabled_tools_from_the_environment(tmp_path: Path) -> None:
    env = environment(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/b.db", ENABLED_TOOLS='["time", "tasks_list"]')
    with uvicorn_app(env) as (url, _):
        async with mcp_client(f"{url}/mcp", user_id=5) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("tasks_add", {"title": "x"})
    assert names == {"time_now", "time_set_timezone", "tasks_list"}, names
    assert refused.is_error and "Unknown tool" in refused.content[0].text, refused


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"DATABASE_URL": "mysql://db/butler"}, "DATABASE_URL: use sqlite+aiosqlite"),
        ({"DATABASE_URL": "sqlite+aiosqlite:////no/such/dir/b.db"}, "does not exist"),
        ({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"}, "in-memory SQLite database is lost between connections"),
        ({"DEFAULT_TIMEZONE": "Mars/Base"}, "DEFAULT_TIMEZONE: unknown timezone 'Mars/Base'"),
        ({"ENABLED_TOOLS": '["tasks", "weather"]'}, "ENABLED_TOOLS: unknown tool or domain weather"),
        ({"LIMITS__LIST_DEFAULT": "500"}, "LIST_DEFAULT must not exceed"),
        ({"BUTLER_ENV": "production", "MCP_AUTH_TOKEN": "change-me"}, "MCP_AUTH_TOKEN is empty or a placeholder"),
    ],
)
def test_bad_configuration_is_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: dict[str, str], expected: str
) -> None:
    for name, value in (environment(DATABASE_URL="sqlite+aiosqlite:////tmp/butler-unused.db") | variables).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(McpServerSettings, "mcp-server")
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2, stopped.value
    assert len(lines) == 1 and lines[0].startswith("mcp-server: invalid configuration: ") and expected in lines[0], (
        lines
    )


def test_the_app_module_stops_on_bad_configuration_without_a_traceback() -> None:
    env = environment(DATABASE_URL="mysql://db/butler")
    done = subprocess.run(
        [sys.executable, "-c", "import mcp_server.app"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, f"expected exit 2, got {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr and "DATABASE_URL" in done.stderr, done.stderr

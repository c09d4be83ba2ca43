"""The MCP Inspector's CLI, a client we did not write, lists and calls the tools over Streamable HTTP."""

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from mcp_server.tools.catalog import TOOL_NAMES
from tests.mcp_server.conftest import TOKEN, RunningServer

# Pinned: "0.x" may resolve to an older cached release that has no --header option.
INSPECTOR = "@modelcontextprotocol/inspector@0.22.0"

# Only a developer machine without Node.js may skip; in CI (CI=true) a missing npx fails the test.
pytestmark = pytest.mark.skipif(
    shutil.which("npx") is None and not os.environ.get("CI"), reason="npx (Node.js) is not installed"
)


def inspector(server: RunningServer, *arguments: str, headers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = ["npx", "-y", INSPECTOR, "--cli", server.mcp_url, "--transport", "http", *arguments]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    # The first run downloads the package from the npm registry.
    return subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def output(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, f"expected the Inspector to succeed, exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def test_inspector_lists_and_calls_tools(server: RunningServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = output(inspector(server, "--method", "tools/list", headers=auth))
    assert {tool["name"] for tool in listed["tools"]} == TOOL_NAMES, listed

    call = ["--method", "tools/call", "--tool-name", "tasks_add", "--tool-arg", "title=Inspected"]
    result = output(inspector(server, *call, headers=auth | {"X-Telegram-User-Id": "424242"}))
    assert result["isError"] is False and result["structuredContent"]["title"] == "Inspected", result


def test_inspector_without_the_token_is_refused(server: RunningServer) -> None:
    done = inspector(server, "--method", "tools/list", headers={})
    assert done.returncode != 0 and "wrong bearer token" in done.stderr, f"expected a 401 failure: {done}"

"""Hot reload in the dev stack: edits reach the running containers with no rebuild and no container restart."""

import json
import os
import secrets
import shutil
import time

import pytest

from tests.e2e.mcp import describe_server
from tests.e2e.stack import MCP_TOKEN, Stack, wait_until
from tests.e2e.telegram_user import TelegramUser, chat_user

pytestmark = pytest.mark.e2e

PROBE_TOOL = '''

@mcp.tool()
def reload_probe() -> str:
    """{marker}"""
    return "{marker}"
'''


def probe_description(stack: Stack) -> str | None:
    return describe_server(stack.mcp_port, MCP_TOKEN)["tools"].get("reload_probe")


def test_mcp_python_edit_is_served_without_restarting_the_container(stack: Stack) -> None:
    before = stack.restart_marker("mcp-server")
    marker = f"probe {secrets.token_hex(4)}"
    stack.edit("mcp_server/app.py", lambda text: text + PROBE_TOOL.format(marker=marker))
    try:
        wait_until(lambda: probe_description(stack) == marker, 30, f"tool reload_probe described as {marker!r}")
        assert stack.restart_marker("mcp-server") == before, "expected the reload inside the same container"
    finally:
        stack.edit("mcp_server/app.py", lambda text: text.replace(PROBE_TOOL.format(marker=marker), ""))
    wait_until(lambda: probe_description(stack) is None, 30, "the probe tool gone after the edit was undone")


def test_shared_edit_reloads_the_mcp_server(stack: Stack) -> None:
    version = f"0.0.0+{secrets.token_hex(3)}"
    original = (stack.workdir / "shared/version.py").read_text()
    stack.edit("shared/version.py", lambda _: f'VERSION = "{version}"\n')
    try:
        wait_until(lambda: stack.mcp_health().get("version") == version, 30, f"/health to report {version}")
        assert describe_server(stack.mcp_port, MCP_TOKEN)["version"] == version
    finally:
        stack.edit("shared/version.py", lambda _: original)


def test_yaml_config_edit_reloads_the_mcp_server(stack: Stack) -> None:
    marker = f"Instructions {secrets.token_hex(4)}"
    original = (stack.workdir / "config/mcp_server.yaml").read_text()
    before = stack.restart_marker("mcp-server")
    stack.edit("config/mcp_server.yaml", lambda text: text + f"\ninstructions: {marker}\n")
    try:
        wait_until(
            lambda: describe_server(stack.mcp_port, MCP_TOKEN)["instructions"] == marker,
            30,
            f"MCP instructions {marker!r} after the YAML edit",
        )
        assert stack.restart_marker("mcp-server") == before, "expected the reload inside the same container"
    finally:
        stack.edit("config/mcp_server.yaml", lambda _: original)


def test_mcp_syntax_error_keeps_the_container_and_recovers_on_the_next_save(stack: Stack) -> None:
    before = stack.restart_marker("mcp-server")
    original = (stack.workdir / "mcp_server/app.py").read_text()
    stack.edit("mcp_server/app.py", lambda text: text + "\ndef broken(:\n")
    wait_until(lambda: "SyntaxError" in stack.logs("mcp-server"), 30, "the SyntaxError in the mcp-server log")
    time.sleep(1)
    assert stack.inspect("mcp-server")["State"]["Running"], "expected the container to keep running"
    stack.edit("mcp_server/app.py", lambda _: original)
    wait_until(lambda: stack.mcp_health().get("status") == "ok", 30, "mcp-server healthy again after the fix")
    assert stack.restart_marker("mcp-server") == before, "expected no container restart"


PROBE_COMMAND = """

@router.message(Command("probe"))
async def reload_probe(message: Message) -> None:
    await message.answer("{marker}")
"""


def bot_pid(stack: Stack) -> int:
    health = stack.docker_exec("butler-bot", "python", "-c", BOT_HEALTH)
    return json.loads(health)["pid"]


def settled_bot_pid(stack: Stack) -> int:
    """The bot's pid once an earlier test's restart is over: the same process answers twice, 2 s apart."""

    def same_pid_twice() -> int | None:
        first = bot_pid(stack)
        time.sleep(2)
        return first if bot_pid(stack) == first else None

    return wait_until(same_pid_twice, 60, "the bot process to settle")


BOT_HEALTH = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8090/health', timeout=3).read().decode())"


def owner(stack: Stack) -> TelegramUser:
    return chat_user(stack, 4242)


def test_bot_python_edit_replaces_the_process_with_new_behaviour(stack: Stack) -> None:
    before_pid, before = settled_bot_pid(stack), stack.restart_marker("butler-bot")
    marker = f"probe {secrets.token_hex(4)}"
    snippet = "from aiogram.filters import Command\n" + PROBE_COMMAND.format(marker=marker)
    stack.edit("butler_bot/handlers/start.py", lambda text: text + snippet)
    try:
        new_pid = wait_until(lambda: (pid := bot_pid(stack)) != before_pid and pid, 60, "a new bot process")
        assert owner(stack).ask("/probe") == [marker]
        assert stack.restart_marker("butler-bot") == before, "expected watchfiles to restart the process only"
        assert new_pid != before_pid
    finally:
        stack.edit("butler_bot/handlers/start.py", lambda text: text.replace(snippet, ""))


def test_bot_ignores_non_python_edits_and_bytecode(stack: Stack) -> None:
    before_pid = settled_bot_pid(stack)
    notes = stack.workdir / "butler_bot/NOTES.md"
    cache = stack.workdir / "butler_bot/__pycache__"
    try:
        notes.write_text("not code\n")
        cache.mkdir()
        (cache / "start.cpython-311.pyc").write_bytes(b"\0" * 16)
        time.sleep(3)  # watchfiles batches events for ~1.6 s at most before it restarts
        assert bot_pid(stack) == before_pid, "expected no restart for a Markdown file or a __pycache__ write"
    finally:
        notes.unlink()
        shutil.rmtree(cache)


def test_bot_syntax_error_keeps_the_container_and_recovers(stack: Stack) -> None:
    before = stack.restart_marker("butler-bot")
    original = (stack.workdir / "butler_bot/handlers/start.py").read_text()
    stack.edit("butler_bot/handlers/start.py", lambda text: text + "\ndef broken(:\n")
    try:
        wait_until(lambda: "SyntaxError" in stack.logs("butler-bot"), 45, "the SyntaxError in the bot log")
        assert stack.inspect("butler-bot")["State"]["Running"], "expected the container to keep running"
    finally:
        stack.edit("butler_bot/handlers/start.py", lambda _: original)
    replies = wait_until(lambda: owner(stack).ask("/start", timeout=10), 60, "the bot answering /start again")
    assert replies, "expected a greeting after the fix"
    assert stack.restart_marker("butler-bot") == before, "expected no container restart"


def test_containers_leave_no_files_in_the_source_tree(stack: Stack) -> None:
    litter = [str(path.relative_to(stack.workdir)) for path in stack.workdir.rglob("__pycache__")]
    foreign = [str(p.relative_to(stack.workdir)) for p in stack.workdir.rglob("*") if p.stat().st_uid != os.getuid()]
    assert not litter, f"expected no __pycache__ written by the containers; saw {litter}"
    assert not foreign, f"expected every file owned by the developer; saw {foreign}"


def test_mistral_was_never_restarted(stack: Stack) -> None:
    # Runs after the edits above: the marker was taken when the stack became healthy.
    assert stack.restart_marker("mistral") == stack.mistral_at_start, "expected reloads never to touch mistral"

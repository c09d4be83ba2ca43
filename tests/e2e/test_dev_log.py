"""The dev log is for the developer: an idle dev stack, as `make dev` runs it, says next to nothing."""

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, DEV_FILE, Stack, copy_worktree, wait_until

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 60
# The target is about a line a minute; polling that logged would print one a second or more.
MAX_IDLE_LINES = 6
SERVICES = ("mcp-server", "butler-bot", "telegram-emulator", "mistral")


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The base file, the dev overlay and the emulator, at the overlay's DEBUG level; no model on the volume."""
    workdir = copy_worktree(tmp_path_factory.mktemp("idle"))
    running = Stack(workdir=workdir, compose=COMPOSE_FLAVOURS["compose-v2"], files=[BASE_FILE, DEV_FILE])
    try:
        running.run("up", "-d", timeout=1800)
        running.wait_healthy("mcp-server", "telegram-emulator", "butler-bot")
        yield running
    finally:
        running.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def test_an_idle_dev_stack_prints_next_to_nothing(dev_stack: Stack) -> None:
    wait_until(lambda: "polling as" in dev_stack.logs("butler-bot"), 60, "the bot to start polling")
    assert "DEBUG" in dev_stack.run("config").stdout, "expected the dev overlay to log at DEBUG"
    start = int(time.time()) + 1
    time.sleep(IDLE_SECONDS + 2)
    printed = {}
    for service in SERVICES:
        window = ["--since", str(start), "--until", str(start + IDLE_SECONDS)]
        result = subprocess.run(
            ["docker", "logs", *window, dev_stack.container_id(service)], capture_output=True, text=True, check=True
        )
        printed[service] = (result.stdout + result.stderr).splitlines()
    total = sum(map(len, printed.values()))
    shown = "\n".join(f"{service}: {line}" for service, lines in printed.items() for line in lines[:20])
    assert total <= MAX_IDLE_LINES, f"expected at most {MAX_IDLE_LINES} lines in an idle minute; saw {total}:\n{shown}"

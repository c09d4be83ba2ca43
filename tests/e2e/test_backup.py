"""`make backup` under write load, `make restore` into a fresh stack: nothing acknowledged before the backup is lost.

The backup is taken from the shared dev stack (Compose v2) while writers keep adding tasks over MCP; it is
restored into a second stack of this module's own, started from another copy of the repo with empty volumes.
"""

import asyncio
import json
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from shared.backup import BOT_STORE, unpack_archive
from tests.e2e.mcp import mcp_client
from tests.e2e.stack import MCP_TOKEN, Stack, stack_of_its_own

pytestmark = pytest.mark.e2e

WRITERS = (5121, 5122, 5123)
# Tasks written before the backup starts; the writers go on while it runs.
LOAD_BEFORE_BACKUP = 30
WRITE_PAUSE = 0.05
# Allowed in the stacks (tests/e2e/stack.py ALLOWED_USERS): the bot remembers their Telegram language.
RUSSIAN_USER = 5124
READ_LANGUAGES = (
    "import json, sqlite3; db = sqlite3.connect('/data/butler_bot.sqlite3'); "
    "print(json.dumps(db.execute('SELECT user_id, language FROM user_languages ORDER BY user_id').fetchall()))"
)


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second dev stack, empty volumes, from a copy of the repo of its own: where the backup goes back."""
    with stack_of_its_own(tmp_path_factory.mktemp("restored")) as running:
        yield running


def make(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """A make target run by the developer in the stack's directory: it finds the stack by its containers."""
    done = subprocess.run(
        # --no-print-directory: under `make test` the outer make's MAKELEVEL would add "Entering directory" lines.
        ["make", "--no-print-directory", *args],
        cwd=stack.workdir,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"expected `make {' '.join(args)}` to succeed; exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done


async def back_up_while_writing(stack: Stack) -> tuple[set[str], int, subprocess.CompletedProcess[str]]:
    """Writers add tasks until `make backup` is done; the titles acknowledged before it started, how many were
    acknowledged while it ran, and its result."""
    acknowledged: list[tuple[float, str]] = []
    loaded, backup_done = asyncio.Event(), asyncio.Event()

    async def writer(client: Client, user_id: int) -> None:
        number = 0
        while not backup_done.is_set():
            title = f"task {user_id} {number} {secrets.token_hex(4)}"
            result = await client.call_tool("tasks_add", {"title": title}, read_timeout_seconds=30)
            assert not result.is_error, f"expected tasks_add to succeed under load; saw {result.content}"
            acknowledged.append((time.monotonic(), title))
            if len(acknowledged) == LOAD_BEFORE_BACKUP:
                loaded.set()
            number += 1
            # A steady stream, not a flood: the 2-core CI host still has to run the backup itself.
            await asyncio.sleep(WRITE_PAUSE)

    async def run_writer(user_id: int) -> None:
        async with mcp_client(stack, user_id) as client:
            await writer(client, user_id)

    async def back_up() -> tuple[float, subprocess.CompletedProcess[str]]:
        await loaded.wait()
        started = time.monotonic()
        try:
            return started, await asyncio.to_thread(make, stack, "backup")
        finally:
            backup_done.set()

    async with asyncio.timeout(300):
        (started, done), *_ = await asyncio.gather(back_up(), *(run_writer(user_id) for user_id in WRITERS))
    before = {title for moment, title in acknowledged if moment < started}
    return before, len(acknowledged) - len(before), done


def exported_titles(stack: Stack, user_id: int) -> set[str]:
    response = httpx.get(
        f"http://127.0.0.1:{stack.mcp_port}/internal/export",
        headers={"Authorization": f"Bearer {MCP_TOKEN}", "X-Telegram-User-Id": str(user_id)},
        timeout=30,
    )
    assert response.status_code == 200, f"expected the export to answer 200, got {response.status_code}"
    return {task["title"] for task in response.json()["tasks"]}


def languages_in(archive: Path, scratch: Path) -> list[list[Any]]:
    with archive.open("rb") as stream:
        unpack_archive(stream, scratch)
    with closing(sqlite3.connect(scratch / BOT_STORE)) as db:
        return [list(row) for row in db.execute("SELECT user_id, language FROM user_languages ORDER BY user_id")]


@pytest.mark.parametrize("stack", ["compose-v2"], indirect=True)
def test_a_backup_taken_under_write_load_restores_into_a_fresh_stack_with_nothing_missing(
    stack: Stack, fresh_stack: Stack, tmp_path: Path
) -> None:
    # Something in the bot's store too: a Russian client's language.
    russian = {"id": RUSSIAN_USER, "is_bot": False, "first_name": "Ivan", "language_code": "ru"}
    emulator = f"http://127.0.0.1:{stack.emulator_port}"
    httpx.post(
        f"{emulator}/sendMessage", json={"token": stack.env["TELEGRAM_BOT_TOKEN"], "from": russian, "text": "/help"}
    )
    deadline = time.monotonic() + 60
    while [RUSSIAN_USER, "ru"] not in json.loads(stack.docker_exec("butler-bot", "python", "-c", READ_LANGUAGES)):
        assert time.monotonic() < deadline, "expected the bot to remember the Russian user's language within 60 s"
        time.sleep(0.5)

    before, during, done = asyncio.run(back_up_while_writing(stack))
    assert during > 0, "expected writes acknowledged while the backup ran (else it was not taken under load)"
    archive = stack.workdir / done.stdout.split("backup written: ")[-1].strip()
    assert archive.is_file() and archive.name.startswith("butler-"), f"expected the archive's name; saw {done.stdout}"
    languages = languages_in(archive, tmp_path)
    assert [RUSSIAN_USER, "ru"] in languages, f"expected the bot's store in the archive; its languages: {languages}"

    make(fresh_stack, "restore", f"FILE={archive}")
    fresh_stack.wait_healthy("mcp-server", "butler-bot")

    restored = set().union(*(exported_titles(fresh_stack, user_id) for user_id in WRITERS))
    missing = sorted(before - restored)
    assert not missing, (
        f"expected all {len(before)} tasks acknowledged before the backup; {len(missing)} missing: {missing[:3]}"
    )
    restored_languages = json.loads(fresh_stack.docker_exec("butler-bot", "python", "-c", READ_LANGUAGES))
    assert restored_languages == languages, (
        f"expected the bot's store as backed up: {languages}; saw {restored_languages}"
    )

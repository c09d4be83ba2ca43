"""Faults in the running dev stack: the MCP server stopped or killed, the bot restarted over and over, the model
gone mid-answer, the bot cut off its network, a texts file saved empty, the data volumes full. Nothing is lost and
the stack heals itself.

The module runs a stack of its own (Compose v2, without mistral: the LLM stand-in plays the model), so its faults
never reach the stack the other end-to-end tests share; the full-disk test runs one more, on small volumes.
"""

import asyncio
import html
import re
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from mcp import Client

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.mcp import call, in_seconds, mcp_client
from tests.e2e.stack import BASE_FILE, DEV_FILE, E2E_FILE, Stack, stack_of_its_own, wait_until
from tests.e2e.telegram_user import TelegramUser, chat_user

pytestmark = pytest.mark.e2e

# butler_bot/reminders.py MAX_BACKOFF: the longest pause between claims while the MCP server is away.
BACKOFF_CAP = 10
# Stack.env sets LLM_TIMEOUT=5 for the bot.
LLM_TIMEOUT = 5
TOOLS_UNAVAILABLE = "My tools (tasks, notes, reminders) are unavailable right now. Please try again in a minute."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The dev stack from a copy of the repo, for this module alone."""
    with stack_of_its_own(tmp_path_factory.mktemp("faults")) as running:
        yield running


def shown(person: TelegramUser) -> list[str]:
    """The bot's new messages in the chat as the user reads them: HTML shown without its tags."""
    return [html.unescape(re.sub(r"<[^>]+>", "", text)) for text in person.new_replies()]


def collect(person: TelegramUser, count: int, timeout: float) -> list[str]:
    """Read the chat until `count` messages came in, or `timeout` passed; everything read."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen += shown(person)
        time.sleep(0.3)
    return seen


def reminded(messages: list[str]) -> Counter[str]:
    """Each reminder's text (as the test wrote it, without a colon) by the number of times it came."""
    return Counter(message.rsplit(": ", 1)[-1] for message in messages if message.startswith("⏰ Reminder"))


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"expected `docker {' '.join(args)}` to succeed; saw {result.stderr}"
    return result.stdout


async def set_reminders(stack: Stack, plan: dict[int, list[tuple[str, float]]]) -> None:
    """Create each user's reminders over MCP: (text, seconds from now)."""

    async def for_user(user_id: int, reminders: list[tuple[str, float]]) -> None:
        async with mcp_client(stack, user_id) as client:
            for text, seconds in reminders:
                await call(client, "reminders_create", text=text, at=in_seconds(seconds))

    await asyncio.gather(*(for_user(user_id, reminders) for user_id, reminders in plan.items()))


async def pending_reminders(stack: Stack, user_id: int) -> list[dict[str, Any]]:
    async with mcp_client(stack, user_id) as client:
        return (await call(client, "reminders_list", limit=100))["reminders"]


def test_reminders_due_during_a_long_mcp_outage_arrive_once_it_is_back(stack: Stack) -> None:
    person = chat_user(stack, 5101)
    texts = [f"outage{i}x{secrets.token_hex(3)}" for i in range(3)]
    asyncio.run(set_reminders(stack, {5101: [(text, 6 + i) for i, text in enumerate(texts)]}))
    outage_lines = stack.logs("butler-bot").count("cannot reach the MCP server")

    stack.run("stop", "mcp-server")
    try:
        # Long enough for the bot's pause between claims to reach its cap, with every reminder due meanwhile.
        time.sleep(2 * BACKOFF_CAP)
        assert shown(person) == [], "expected no reminder while the MCP server is stopped"
        assert stack.bot_pid(), "expected the bot healthy (its reminder loop alive) through the outage"
    finally:
        stack.run("start", "mcp-server")

    arrived = reminded(collect(person, len(texts), 60))
    assert arrived == Counter(texts), f"expected each reminder once after the outage; saw {arrived}"
    log = stack.logs("butler-bot")
    assert log.count("cannot reach the MCP server") == outage_lines + 1, "expected one log line as the outage began"
    assert "the MCP server at http://mcp-server:8000 answers again" in log, "expected a log line as it ended"


# As the issue asks; a cycle takes about 4 s on an idle 2-core machine, 15 s on a loaded one (mostly the bot's
# start-up imports).
RESTARTS = 20
REMINDER_USERS = (5102, 5103, 5104, 5105, 5106)
REMINDERS_EACH = 20
# Seconds over which the reminders fall due, one after another, the users taking turns: about as long as
# the restarts take on an idle machine.
REMINDER_WINDOW = 80


def restart_bot(stack: Stack, hot_reload: bool, mark: str) -> None:
    """Restart the bot as a developer does (save a .py file) or as Docker does; wait until it is healthy again."""
    if hot_reload:
        before = stack.bot_pid()
        stack.edit("butler_bot/views.py", lambda text: text + f"# {mark}\n")
        wait_until(lambda: stack.bot_pid() != before, 60, f"a new bot process after {mark}")
    else:
        docker("restart", stack.container_id("butler-bot"))
        wait_until(stack.bot_pid, 60, f"a healthy bot after {mark}")


def test_reminders_due_while_the_bot_restarts_again_and_again_arrive_exactly_once(stack: Stack) -> None:
    step = REMINDER_WINDOW / (REMINDERS_EACH * len(REMINDER_USERS))
    plan = {
        user_id: [
            (f"r{user_id}n{i}x{secrets.token_hex(2)}", 3 + step * (i * len(REMINDER_USERS) + k))
            for i in range(REMINDERS_EACH)
        ]
        for k, user_id in enumerate(REMINDER_USERS)
    }
    asyncio.run(set_reminders(stack, plan))
    original = (stack.workdir / "butler_bot/views.py").read_text()
    try:
        for restart in range(RESTARTS):
            # Both ways in turn: watchfiles restarts the process, Docker the container.
            restart_bot(stack, hot_reload=restart % 2 == 0, mark=f"restart {restart}")
        last = stack.bot_pid()
    finally:
        stack.edit("butler_bot/views.py", lambda _: original)
    wait_until(lambda: stack.bot_pid() != last, 60, "a new bot process after the edits were undone")

    for user_id, reminders in plan.items():
        expected = Counter(text for text, _ in reminders)
        person = chat_user(stack, user_id)
        arrived = reminded(collect(person, REMINDERS_EACH, 120))
        # Once the server has every report, no reminder can come back after its lease: none is pending.
        wait_until(
            lambda u=user_id: asyncio.run(pending_reminders(stack, u)) == [],
            120,
            f"user {user_id}'s reminders all reported delivered",
        )
        arrived += reminded(shown(person))
        assert arrived == expected, (
            f"expected each of user {user_id}'s reminders once over {RESTARTS} restarts; missing "
            f"{sorted(expected - arrived)}, more than once {[text for text, times in arrived.items() if times > 1]}"
        )


KILLED_WRITERS = tuple(range(7001, 7011))
WRITES_EACH = 20
# Acknowledged writes before the kill: it lands while most of the 200 are in flight.
KILL_AFTER = 10


async def add_tasks_while_the_server_is_killed(stack: Stack) -> tuple[set[tuple[int, str]], list[str]]:
    """Every writer adds its tasks at once; the MCP server is killed meanwhile. What was acknowledged, and the
    tool errors (answers that were not a task)."""
    acknowledged: set[tuple[int, str]] = set()
    refused: list[str] = []
    enough = asyncio.Event()

    async def add(client: Client, user_id: int, title: str) -> None:
        try:
            result = await client.call_tool("tasks_add", {"title": title}, read_timeout_seconds=30)
        except Exception:  # the server died under the call: not acknowledged
            return
        if result.is_error or result.structured_content is None:
            refused.append(str(result.content))
            return
        assert result.structured_content["title"] == title, f"expected {title!r}; saw {result.structured_content}"
        acknowledged.add((user_id, title))
        if len(acknowledged) >= KILL_AFTER:
            enough.set()

    async def writer(user_id: int) -> None:
        titles = [f"task {user_id} {i} {secrets.token_hex(4)}" for i in range(WRITES_EACH)]
        try:
            async with mcp_client(stack, user_id) as client:
                await asyncio.gather(*(add(client, user_id, title) for title in titles))
        except Exception:  # closing a session whose server is gone
            pass

    async def kill() -> None:
        async with asyncio.timeout(120):
            await enough.wait()
        await asyncio.to_thread(docker, "kill", "--signal", "KILL", stack.container_id("mcp-server"))

    async with asyncio.timeout(300):
        await asyncio.gather(kill(), *(writer(user_id) for user_id in KILLED_WRITERS))
    return acknowledged, refused


async def stored_titles(stack: Stack, user_id: int) -> list[str]:
    async with mcp_client(stack, user_id) as client:
        return [task["title"] for task in (await call(client, "tasks_list", show="all", limit=100))["tasks"]]


INTEGRITY = (
    "import sqlite3; db = sqlite3.connect('/data/butler.db'); "
    "print(db.execute('PRAGMA integrity_check').fetchall(), db.execute('PRAGMA foreign_key_check').fetchall())"
)


def test_tasks_acknowledged_before_the_mcp_server_is_killed_are_all_kept_whole(stack: Stack) -> None:
    acknowledged, refused = asyncio.run(add_tasks_while_the_server_is_killed(stack))
    assert refused == [], f"expected every answered write to be a task; saw tool errors {refused[:3]}"
    total = len(KILLED_WRITERS) * WRITES_EACH
    assert KILL_AFTER <= len(acknowledged) < total, (
        f"expected the kill to land mid-way; {len(acknowledged)} of {total} writes were acknowledged"
    )
    stack.run("start", "mcp-server")
    wait_until(stack.mcp_health, 120, "the MCP server answering again after the kill")

    stored = {user_id: asyncio.run(stored_titles(stack, user_id)) for user_id in KILLED_WRITERS}
    lost = sorted(title for user_id, title in acknowledged if title not in stored[user_id])
    assert lost == [], f"expected every acknowledged task after the restart; {len(lost)} lost, e.g. {lost[:3]}"
    for user_id, titles in stored.items():
        # Whole: each one this writer sent, as sent, once. A write cut short is absent, never half there.
        strange = [title for title in titles if not re.fullmatch(rf"task {user_id} \d+ [0-9a-f]{{8}}", title)]
        assert strange == [] and len(set(titles)) == len(titles), (
            f"expected user {user_id}'s tasks whole and once each; saw {titles}"
        )
    assert stack.docker_exec("mcp-server", "python", "-c", INTEGRITY).strip() == "[('ok',)] []", (
        "expected the SQLite file to pass integrity and foreign-key checks"
    )


def test_model_gone_mid_answer_gets_a_clear_reply_and_the_next_message_works(stack: Stack, llm: LlmStandIn) -> None:
    person = chat_user(stack, 5107)
    llm.script({"when": "story", "replies": [{"content": "once upon a time " * 40, "stream_delay": 0.5}]})
    bot_before = stack.restart_marker("butler-bot"), stack.bot_pid()
    shown(person)
    person.send("tell me a story")
    wait_until(person.drafts, 30, "a draft of the answer as the model streams it")
    stopped = time.monotonic()
    stack.run("stop", "--timeout", "1", "llm-standin")
    try:
        replies = collect(person, 1, LLM_TIMEOUT + 10)
        waited = time.monotonic() - stopped
        assert replies and replies[-1].startswith("The language model"), (
            f"expected a reply saying the model is unavailable; saw {replies}"
        )
        assert waited < LLM_TIMEOUT + 5, (
            f"expected the reply within LLM_TIMEOUT ({LLM_TIMEOUT} s); it took {waited:.0f} s"
        )
    finally:
        stack.run("start", "llm-standin")
    wait_until(lambda: httpx2.get(f"{llm.url}/health", timeout=3).is_success, 60, "the stand-in back")
    llm.script({"when": "back", "replies": [{"content": "Yes, here again."}]})
    assert person.ask("are you back?", timeout=30) == ["Yes, here again."]
    assert (stack.restart_marker("butler-bot"), stack.bot_pid()) == bot_before, "expected the same bot process"


def test_tools_come_back_by_themselves_after_the_bot_is_cut_off_the_backend_network(stack: Stack) -> None:
    person = chat_user(stack, 5108)
    assert person.ask("/tasks", timeout=30) == ["You have no open tasks."]
    bot, mcp = stack.container_id("butler-bot"), stack.container_id("mcp-server")
    # The dev overlay puts the MCP server on egress too, to publish its port: cut that path, as in production.
    docker("network", "disconnect", stack.network("egress"), mcp)
    docker("network", "disconnect", stack.network("backend"), bot)
    try:
        assert person.ask("/tasks", timeout=60) == [TOOLS_UNAVAILABLE]
    finally:
        docker("network", "connect", stack.network("backend"), bot)
        docker("network", "connect", stack.network("egress"), mcp)
    wait_until(lambda: person.ask("/tasks", timeout=30) == ["You have no open tasks."], 90, "the tools back")
    wait_until(stack.mcp_health, 30, "the MCP server's published port answering again")


def test_text_file_saved_empty_keeps_the_bot_answering(stack: Stack) -> None:
    person = chat_user(stack, 5107)
    original = (stack.workdir / "config/butler_bot_texts.yaml").read_text()
    stack.edit("config/butler_bot_texts.yaml", lambda _: "")
    try:
        [help_text] = person.ask("/help")
        assert "/tasks" in help_text, f"expected the help text from the last good version; saw {help_text!r}"
        assert shown(chat_user(stack, 5107)) == [], "expected one answer"
        wait_until(
            lambda: "butler_bot_texts.yaml is empty: keeping the last version read" in stack.logs("butler-bot"),
            10,
            "a log line saying the texts file is empty",
        )
    finally:
        stack.edit("config/butler_bot_texts.yaml", lambda _: original)


@dataclass
class SmallDiskStack(Stack):
    """The dev stack with both data volumes on a 4 MiB tmpfs (tests/e2e/compose.small_disk.yml)."""

    files: list[str] = field(
        default_factory=lambda: [BASE_FILE, DEV_FILE, E2E_FILE, "tests/e2e/compose.small_disk.yml"]
    )


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_of_its_own(tmp_path_factory.mktemp("small_disk"), SmallDiskStack) as running:
        yield running


def fill(stack: Stack, service: str) -> None:
    """Fill the service's data volume to the last byte, as the service's own user."""
    # dd stops with "No space left on device": that is the point.
    stack.docker_exec(service, "sh", "-c", "dd if=/dev/zero of=/data/filler bs=4k 2>/dev/null; true")
    room = stack.docker_exec(service, "sh", "-c", "df -k --output=avail /data | tail -n 1").strip()
    assert room == "0", f"expected {service}'s /data full; {room} KiB free"


def free(stack: Stack, service: str) -> None:
    stack.docker_exec(service, "rm", "-f", "/data/filler")


STORAGE_FULL = "The butler's storage is full, so nothing was saved; everything saved before is safe."


async def refused_add(stack: Stack, user_id: int, title: str) -> str:
    """Add a task that the server must refuse; its answer."""
    async with mcp_client(stack, user_id) as client:
        result = await client.call_tool("tasks_add", {"title": title})
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error, f"expected tasks_add({title!r}) refused; saw {result.structured_content}"
    return text


async def add_tasks(stack: Stack, user_id: int, titles: list[str]) -> None:
    async with mcp_client(stack, user_id) as client:
        for title in titles:
            await call(client, "tasks_add", title=title)


def test_a_full_data_volume_refuses_writes_with_a_sentence_and_keeps_what_was_stored(small_disk: Stack) -> None:
    user_id = 5120
    stored = [f"stored before {i} {secrets.token_hex(4)}" for i in range(5)]
    asyncio.run(add_tasks(small_disk, user_id, stored))

    fill(small_disk, "mcp-server")
    try:
        # A commit appends at least one 4,120-byte frame to the write-ahead log, more than a free tmpfs page: none fits.
        refusal = asyncio.run(refused_add(small_disk, user_id, "on a full disk"))
        assert STORAGE_FULL in refusal, f"expected the tool error {STORAGE_FULL!r}; saw {refusal!r}"
        # Through the bot: the model is told in that sentence, and the user gets its answer.
        llm = LlmStandIn(f"http://127.0.0.1:{small_disk.llm_standin_port}")
        title = f"from the chat {secrets.token_hex(4)}"
        llm.script(
            {
                "when": "remember",
                "replies": [
                    {"tool_calls": [{"name": "tasks_add", "arguments": {"title": title}}]},
                    {"content": "I could not save that: my storage is full."},
                ],
            }
        )
        person = chat_user(small_disk, 5121)
        assert person.ask(f"remember {title}", timeout=60) == ["I could not save that: my storage is full."]
        told = [m for entry in llm.requests_mentioning(STORAGE_FULL) for m in entry["messages"] if m["role"] == "tool"]
        assert told, f"expected the model to get the tool error {STORAGE_FULL!r}; it got {llm.log()[-1]['messages']}"
        assert small_disk.mcp_health()["status"] == "ok", "expected the MCP server healthy on a full disk"
        assert sorted(asyncio.run(stored_titles(small_disk, user_id))) == sorted(stored), (
            "expected every task stored before readable on a full disk"
        )
    finally:
        free(small_disk, "mcp-server")

    after = f"after the disk was freed {secrets.token_hex(4)}"
    asyncio.run(add_tasks(small_disk, user_id, [after]))
    kept = sorted(asyncio.run(stored_titles(small_disk, user_id)))
    assert kept == sorted([*stored, after]), f"expected {sorted([*stored, after])}; saw {kept}"
    assert asyncio.run(stored_titles(small_disk, 5121)) == [], "expected no task from the refused chat write"
    assert small_disk.docker_exec("mcp-server", "python", "-c", INTEGRITY).strip() == "[('ok',)] []", (
        "expected the SQLite file to pass integrity and foreign-key checks"
    )
    log = small_disk.logs("mcp-server")
    # Two writes were refused: one over MCP, one from the chat.
    assert log.count("is full: a write was refused and rolled back") == 2 and "Traceback" not in log, (
        f"expected one log line per refused write and no traceback; saw {log[-3000:]}"
    )


NOT_SAVED = "⚠️ I could not save this conversation (my disk is full or read-only), so I will not remember it."
BOT_STORE_INTEGRITY = (
    "import sqlite3; db = sqlite3.connect('/data/butler_bot.sqlite3'); "
    "print(db.execute('PRAGMA integrity_check').fetchall())"
)


def answer_to(person: TelegramUser, text: str) -> str:
    """The bot's one reply to `text`; the stand-in echoes the message (after the local time the bot puts first)."""
    replies = person.ask(text)
    assert len(replies) == 1 and replies[0].endswith(text), f"expected one reply echoing {text!r}; saw {replies}"
    return replies[0]


def test_a_full_bot_store_keeps_the_bot_answering_and_says_it_will_not_remember(small_disk: Stack) -> None:
    person = chat_user(small_disk, 5122)
    llm = LlmStandIn(f"http://127.0.0.1:{small_disk.llm_standin_port}")
    llm.reset()
    first = f"first {secrets.token_hex(4)}"
    assert NOT_SAVED not in answer_to(person, first)

    fill(small_disk, "butler-bot")
    try:
        second = f"second {secrets.token_hex(4)}"
        reply = answer_to(person, second)
        assert reply.startswith(NOT_SAVED), f"expected the answer after a notice it is not remembered; saw {reply!r}"
        assert person.ask("/tasks") == ["You have no open tasks."], "expected /tasks answered on a full bot store"
        assert small_disk.bot_pid(), "expected the bot healthy on a full bot store"
    finally:
        free(small_disk, "butler-bot")

    third = f"third {secrets.token_hex(4)}"
    assert NOT_SAVED not in answer_to(person, third), "expected no notice once the disk has room again"
    [request] = llm.requests_mentioning(third)
    history = [m["content"] for m in request["messages"] if m["role"] in ("user", "assistant")]
    assert any(first in text for text in history) and not any(second in text for text in history), (
        f"expected the first turn remembered and the second not; the model saw {history}"
    )
    assert small_disk.docker_exec("butler-bot", "python", "-c", BOT_STORE_INTEGRITY).strip() == "[('ok',)]", (
        "expected the bot's store to pass the integrity check"
    )


def volume_checksum(stack: Stack, volume: str) -> str:
    """The SHA-256 of every file on the volume, read through a read-only mount."""
    image = stack.inspect("mcp-server")["Config"]["Image"]
    listing = "cd /data && find . -type f | sort | xargs sha256sum"
    return docker("run", "--rm", "-v", f"{stack.project}_{volume}:/data:ro", "--entrypoint", "sh", image, "-c", listing)


def test_a_read_only_data_volume_stops_the_mcp_server_with_a_clear_line_and_touches_nothing(stack: Stack) -> None:
    user_id, person = 5123, chat_user(stack, 5123)
    stored = [f"before read-only {i} {secrets.token_hex(4)}" for i in range(3)]
    asyncio.run(add_tasks(stack, user_id, stored))
    # Stopped first, so the write-ahead log is folded into the file before the checksum.
    stack.run("stop", "mcp-server")
    before = volume_checksum(stack, "butler-data")
    assert "./butler.db" in before, f"expected the database on the volume; saw {before!r}"
    try:
        stack.run("up", "-d", "--no-deps", "mcp-server", files=[*stack.files, "tests/e2e/compose.read_only_data.yml"])
        wait_until(
            lambda: "/data is mounted read-only; mount the data volume writable" in stack.logs("mcp-server"),
            60,
            "a log line saying the data volume is read-only",
        )
        assert person.ask("/tasks", timeout=60) == [TOOLS_UNAVAILABLE], "expected the user told the tools are down"
        assert volume_checksum(stack, "butler-data") == before, "expected no file on the volume touched"
    finally:
        stack.run("up", "-d", "--no-deps", "--wait", "mcp-server")
    after = f"after read-only {secrets.token_hex(4)}"
    asyncio.run(add_tasks(stack, user_id, [after]))
    kept = sorted(asyncio.run(stored_titles(stack, user_id)))
    assert kept == sorted([*stored, after]), f"expected {sorted([*stored, after])}; saw {kept}"
    assert stack.docker_exec("mcp-server", "python", "-c", INTEGRITY).strip() == "[('ok',)] []", (
        "expected the SQLite file to pass integrity and foreign-key checks"
    )

"""The development loop as a developer feels it: save a file, then use the new code; beside Compose Watch.

Run it from the repository root (Docker running; the images are built on the way):

    .venv/bin/python -m bench.dev_loop [--runs 10]

It starts the dev stack (base file, dev overlay, the e2e stand-in model) from a copy of the tree, so edits never
touch yours, and times the same two jobs twice, each from the save (an editor's write-and-rename) on the host:
- mcp-server: save mcp_server/app.py with a probe tool, then an MCP client (the official SDK, a new session per
  try, every 20 ms) calls it until it answers with the marker of this save;
- butler-bot: save butler_bot/handlers/chat.py so the text sent to the model starts with a marker, then a chat
  message through the emulator (the stand-in answers with one tool call, then an echo), sent again when the old
  code answers it (or nobody does in 15 s: the old process may take it down with it), until an answer carries the
  marker. Then the bench waits for the bot to fall quiet before the next save.
First with the dev overlay's hot reload (uvicorn --reload, watchfiles), then with Docker Compose Watch doing the
same job (bench/compose.watch.yml: `sync+restart`, the same commands without reloading). Beside them, the bare
start of each process in its container (uvicorn on a spare port; the bot with its own token and health port),
timed to its first good /health, and the import of the framework each cannot start without (the MCP SDK, aiogram:
the floor under any restart). Each series is bounded in time (see BUDGET_SECONDS), so a busy host gives fewer
runs rather than a run that never ends; the table says how many.
"""

import argparse
import asyncio
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from bench.table import Row
from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.load import ONE_TOOL_CALL
from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, DEV_FILE, E2E_FILE, MCP_TOKEN, Stack, copy_worktree
from tests.e2e.telegram_user import TelegramUser, chat_user
from tests.e2e.tiny_gguf import write_tiny_gguf

WATCH_FILES = [BASE_FILE, DEV_FILE, E2E_FILE, "bench/compose.watch.yml"]
MCP_FILE = "mcp_server/app.py"
PROBE_TOOL = '''

@mcp.tool()
def reload_probe() -> str:
    """The marker of the last save (make bench)."""
    return "{marker}"
'''
BOT_FILE = "butler_bot/handlers/chat.py"
# The probe goes right after this line of the chat handler: the text the model gets, and echoes, starts with it.
BOT_ANCHOR = "    text = message.text\n"
BOT_PROBE = '    text = "{marker} " + text\n'
# A user on the e2e stack's allow-list that no other bench uses.
PROBE_USER = 5110
# Send the chat message again when no answer came in this time (the old process may take it down with it).
RESEND_AFTER = 15.0
# The bot has answered every message sent again when no reply came in this time.
QUIET = 3.0
TIMEOUT = 120.0
MCP_TARGET_RATIO = 0.5
# A series stops at `runs` or, past its first MIN_RUNS, after BUDGET_SECONDS: a busy host slows every restart.
MIN_RUNS = 3
BUDGET_SECONDS = 45.0
BOT_TARGET_SECONDS = 3.0

# Runs inside a container: start a command from scratch, print the seconds to its first good /health.
START_FLOOR = """
import json, os, subprocess, sys, time, urllib.request
url, command = sys.argv[1], sys.argv[2:]
started = time.time()
process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while True:
        try:
            if json.load(urllib.request.urlopen(url, timeout=1)).get("status") == "ok":
                print(time.time() - started, flush=True)
                break
        except Exception:
            pass
        time.sleep(0.02)
finally:
    process.terminate()
    process.wait()
"""


async def _call_probe(port: int) -> str | None:
    """The probe tool's answer, or None while the server is away or has no probe yet."""
    headers = {"Authorization": f"Bearer {MCP_TOKEN}", "X-Telegram-User-Id": str(PROBE_USER)}
    try:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=5) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
        ):
            result = await client.call_tool("reload_probe", {})
    except Exception:  # restarting: refused, reset, or the old process going away mid-call
        return None
    content = result.content[0] if result.content else None
    return content.text if not result.is_error and isinstance(content, TextContent) else None


def mcp_save_to_tool_call(stack: Stack, original: str) -> float:
    """Seconds from saving the probe tool with a new marker to a tool call that answers with it."""
    marker = f"probe-{secrets.token_hex(4)}"
    saved = time.monotonic()
    stack.edit(MCP_FILE, lambda _: original + PROBE_TOOL.format(marker=marker))
    while time.monotonic() - saved < TIMEOUT:
        if asyncio.run(_call_probe(stack.mcp_port)) == marker:
            return time.monotonic() - saved
        time.sleep(0.02)
    raise AssertionError(f"expected the tool to answer {marker!r} within {TIMEOUT:.0f} s of the save; it did not")


def bot_save_to_answer(stack: Stack, user: TelegramUser, original: str) -> tuple[float, bool]:
    """Seconds from saving the chat handler with a new marker to a chat answer that carries it; and whether a
    message sent again may still be answered."""
    marker = f"probe-{secrets.token_hex(4)}"
    user.new_replies()
    saved = time.monotonic()
    stack.edit(BOT_FILE, lambda _: original.replace(BOT_ANCHOR, BOT_ANCHOR + BOT_PROBE.format(marker=marker)))
    user.send("what time is it?")
    sent_at, sent, answered = saved, 1, 0
    while (now := time.monotonic()) - saved < TIMEOUT:
        replies = user.new_replies()
        answered += len(replies)
        if any(marker in reply for reply in replies):
            return now - saved, answered < sent
        if replies or now - sent_at > RESEND_AFTER:
            user.send("what time is it?")
            sent_at, sent = now, sent + 1
        time.sleep(0.05)
    raise AssertionError(f"expected an answer carrying {marker!r} within {TIMEOUT:.0f} s of the save; none came")


def wait_quiet(user: TelegramUser) -> None:
    """Wait until the bot has answered every message sent again (or dropped it), so none is in flight at the next
    save."""
    deadline = time.monotonic() + TIMEOUT
    last_reply = time.monotonic()
    while (now := time.monotonic()) - last_reply < QUIET and now < deadline:
        if user.new_replies():
            last_reply = now
        time.sleep(0.2)


def floor_seconds(stack: Stack, service: str, url: str, command: list[str], env: dict[str, str]) -> float:
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    out = stack.run("exec", "-T", *env_args, service, "python", "-c", START_FLOOR, url, *command).stdout
    return float(out.strip())


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p90."""
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[89]


@dataclass
class Loop:
    """Seconds per run for each service: per save for a way of reloading, per start for the bare starts."""

    mcp: list[float]
    bot: list[float]


@dataclass
class DevLoop:
    compose: str
    reload: Loop
    watch: Loop
    # Bare starts of each process.
    floors: Loop
    # Importing the framework each process cannot start without: the MCP SDK, aiogram.
    imports: Loop


def series(measure: Callable[[], float], runs: int) -> list[float]:
    """Up to `runs` timings, fewer when they overrun the budget (never fewer than MIN_RUNS)."""
    started, values = time.monotonic(), []
    while len(values) < runs and (len(values) < MIN_RUNS or time.monotonic() - started < BUDGET_SECONDS):
        values.append(measure())
    return values


def time_saves(stack: Stack, runs: int, mcp_original: str, bot_original: str) -> Loop:
    """Timed saves per service, after one untimed save that puts each probe in place (the originals are the files
    before any probe)."""
    user = chat_user(stack, PROBE_USER)
    mcp_save_to_tool_call(stack, mcp_original)
    mcp = series(lambda: mcp_save_to_tool_call(stack, mcp_original), runs)

    def bot_run() -> float:
        seconds, in_flight = bot_save_to_answer(stack, user, bot_original)
        if in_flight:
            wait_quiet(user)
        return seconds

    bot_run()

    return Loop(mcp, series(bot_run, runs))


def import_seconds(stack: Stack, service: str, module: str) -> float:
    timer = f"import time; started = time.perf_counter(); import {module}; print(time.perf_counter() - started)"
    return float(stack.run("exec", "-T", service, "python", "-c", timer).stdout.strip())


def time_imports(stack: Stack, runs: int) -> Loop:
    return Loop(
        series(lambda: import_seconds(stack, "mcp-server", "mcp.server"), runs),
        series(lambda: import_seconds(stack, "butler-bot", "aiogram"), runs),
    )


def time_floors(stack: Stack, runs: int) -> Loop:
    uvicorn = ["uvicorn", "mcp_server.app:app", "--port", "8011"]
    mcp = series(lambda: floor_seconds(stack, "mcp-server", "http://127.0.0.1:8011/health", uvicorn, {}), runs)
    bot_env = {"TELEGRAM_BOT_TOKEN": "777:bench-floor", "HEALTH_PORT": "8091"}
    bot_start = ["python", "-m", "butler_bot"]
    bot = series(lambda: floor_seconds(stack, "butler-bot", "http://127.0.0.1:8091/health", bot_start, bot_env), runs)
    return Loop(mcp, bot)


@contextmanager
def compose_watch(stack: Stack, log: Path) -> Iterator[None]:
    """`docker compose watch` on the two services, for as long as the block runs."""
    with log.open("w") as out:
        process = subprocess.Popen(
            stack.argv("watch", "--no-up", "mcp-server", "butler-bot", files=WATCH_FILES),
            cwd=stack.workdir,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "watch enabled" not in log.read_text().lower():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"expected Compose Watch to start; it said:\n{log.read_text()}")
            time.sleep(0.2)
        yield
    except Exception:
        print(f"Compose Watch said:\n{log.read_text()}")
        raise
    finally:
        process.terminate()
        process.wait(30)


def run(runs: int = 10, compose: str = "compose-v2") -> DevLoop:
    with tempfile.TemporaryDirectory(prefix="butler-bench-dev-loop-") as tmp:
        stack = Stack(workdir=copy_worktree(Path(tmp) / "tree"), compose=COMPOSE_FLAVOURS[compose])
        mcp_original = (stack.workdir / MCP_FILE).read_text()
        bot_original = (stack.workdir / BOT_FILE).read_text()
        assert bot_original.count(BOT_ANCHOR) == 1, f"expected one {BOT_ANCHOR.strip()!r} in {BOT_FILE} for the probe"
        stack.run("build", timeout=3600)
        model = Path(tmp) / "tiny.gguf"
        write_tiny_gguf(model)
        try:
            stack.run("create")
            subprocess.run(
                ["docker", "cp", str(model), f"{stack.container_id('mistral')}:/models/tiny.gguf"], check=True
            )
            stack.run("up", "-d")
            stack.wait_healthy("mcp-server", "telegram-emulator", "butler-bot", "mistral", "llm-standin")
            LlmStandIn(f"http://127.0.0.1:{stack.llm_standin_port}").script(ONE_TOOL_CALL)
            reload = time_saves(stack, runs, mcp_original, bot_original)
            floors = time_floors(stack, runs)
            imports = time_imports(stack, runs)

            # The same services under Watch: recreated from their images with the Watch overlay, the rest untouched.
            stack.run("up", "-d", "mcp-server", "butler-bot", files=WATCH_FILES)
            stack.wait_healthy("mcp-server", "butler-bot")
            with compose_watch(stack, Path(tmp) / "watch.log"):
                watch = time_saves(stack, runs, mcp_original, bot_original)
        finally:
            stack.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
    return DevLoop(compose, reload, watch, floors, imports)


def p50_p90(values: list[float]) -> str:
    return "{:.2f} / {:.2f} s ({} runs)".format(*percentiles(values), len(values))


def rows(result: DevLoop) -> list[Row]:
    reload, watch, floors, imports = result.reload, result.watch, result.floors, result.imports
    mcp_ratio = percentiles(reload.mcp)[0] / percentiles(watch.mcp)[0]
    bot_p50 = percentiles(reload.bot)[0]
    return [
        Row(
            "dev loop",
            "mcp-server: save → a tool call answered by the new code, uvicorn --reload: p50 / p90",
            p50_p90(reload.mcp),
            f"≤ {MCP_TARGET_RATIO}x Watch (p50)",
            f"Compose Watch (sync+restart), same job: {p50_p90(watch.mcp)} ({mcp_ratio:.2f}x at p50); "
            f"bare start to /health: {p50_p90(floors.mcp)}, of which importing the MCP SDK: {p50_p90(imports.mcp)}",
            mcp_ratio <= MCP_TARGET_RATIO,
        ),
        Row(
            "dev loop",
            "butler-bot: save → a chat message answered by the new code (stand-in model, 1 tool call), watchfiles: "
            "p50 / p90",
            p50_p90(reload.bot),
            f"p50 ≤ {BOT_TARGET_SECONDS:g} s",
            f"Compose Watch (sync+restart), same job: {p50_p90(watch.bot)}; "
            f"bare start to /health (ready to poll): {p50_p90(floors.bot)}, of which importing aiogram: "
            f"{p50_p90(imports.bot)}",
            bot_p50 <= BOT_TARGET_SECONDS,
        ),
    ]


def report(result: DevLoop) -> None:
    print(f"dev loop, {result.compose}")
    loops = {
        "hot reload": result.reload,
        "Compose Watch": result.watch,
        "bare start": result.floors,
        "framework import": result.imports,
    }
    for name, loop in loops.items():
        print(f"{name:16} mcp-server p50 / p90 {p50_p90(loop.mcp)} | butler-bot {p50_p90(loop.bot)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed saves per service and way, at most")
    parser.add_argument("--compose", choices=list(COMPOSE_FLAVOURS), default="compose-v2")
    args = parser.parse_args()
    report(run(args.runs, args.compose))


if __name__ == "__main__":
    main()

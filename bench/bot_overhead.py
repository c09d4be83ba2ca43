"""Per-message overhead of the butler bot, with the model taken out of the picture.

Run it from the repository root:  .venv/bin/python -m bench.bot_overhead  [--messages 200] [--users 20]

Real parts: the bot's dispatcher, middlewares, handlers, agent loop, `openai` client, MCP client and SQLite
store, in this process; the MCP server (uvicorn, SQLite in a temporary directory) and the scripted LLM
stand-in (tests/e2e/llm_standin) in their own processes, on loopback. Telegram is a recording session that
answers at once. The stand-in answers every message with one tool call (`time_now`), then with an echo of
the message, so each message costs two model requests and one tool call, as a simple real request would.

1. Overhead: one user sends messages one after another; the time from the update to the last reply sent,
   p50 and p95. The components it includes are measured alone too (the two stand-in round trips and the
   tool call), so the bot's own share is printed as well.
2. Load: `--users` users send `--per-user` messages each, all users at once, each waiting for the answer
   before the next message; every reply must reach the chat it answers, with the right text. Each user's
   first message (which opens their MCP connection) is sent and timed before.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from bench.mcp_tools import free_port, uvicorn_process
from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook
from butler_bot.tools import McpTools
from shared.logging import configure_logging
from tests.butler_bot.fakes import recording_bot, text_update

TOKEN = "bench-token-0123456789abcdef"
REPO_ROOT = Path(__file__).resolve().parent.parent
ONE_TOOL_CALL = {
    "when": "",
    "replies": [{"tool_calls": [{"name": "time_now", "arguments": {}}]}, {"content": "echo: {last_user}"}],
}


@contextmanager
def standin_process(port: int) -> Iterator[str]:
    server = REPO_ROOT / "tests/e2e/llm_standin/server.py"
    process = subprocess.Popen(
        [sys.executable, str(server)], env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"{url}/health", timeout=1)
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the LLM stand-in did not start") from None
                time.sleep(0.1)
        httpx2.post(f"{url}/control/script", json={"rules": [ONE_TOOL_CALL]}).raise_for_status()
        yield url
    finally:
        process.terminate()
        process.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


async def component_baseline(standin_url: str, settings: BotSettings, samples: int = 100) -> tuple[float, float]:
    """Median time of what a message needs besides the bot itself: two stand-in requests and one tool call."""
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx2.AsyncClient() as http:
        llm = []
        for _ in range(samples):
            started = time.perf_counter()
            (await http.post(f"{standin_url}/v1/chat/completions", json=body)).raise_for_status()
            llm.append(time.perf_counter() - started)
    tools = McpTools(settings)
    await tools.call(1, "time_now", {})
    calls = []
    for _ in range(samples):
        started = time.perf_counter()
        await tools.call(1, "time_now", {})
        calls.append(time.perf_counter() - started)
    await tools.close()
    return statistics.median(llm), statistics.median(calls)


async def run(args: argparse.Namespace, standin_url: str, mcp_url: str, data_dir: Path) -> None:
    settings = BotSettings(
        telegram_bot_token="42:bench-token",
        mcp_auth_token=TOKEN,
        butler_env="development",
        mcp_url=mcp_url,
        llm_base_url=f"{standin_url}/v1",
        llm_timeout=30,
        store_path=data_dir / "bot.sqlite3",
        allowed_user_ids=tuple(range(1, args.users + 2)),
        log_level="WARNING",
    )
    store = BotStore.open(settings.store_path, settings.history_turns)
    backends = Backends(settings, store)
    bot, session = recording_bot()
    dp = build_dispatcher(settings, store, TextBook(settings.texts_file), backends)
    await backends.conversations()

    llm_round_trip, tool_call = await component_baseline(standin_url, settings)
    owner = args.users + 1
    for n in range(20):  # warm-up: connections, caches, the user's timezone
        await dp.feed_update(bot, text_update(owner, f"warm-up {n}"))
    latencies = []
    for n in range(args.messages):
        started = time.perf_counter()
        await dp.feed_update(bot, text_update(owner, f"message {n}"))
        latencies.append(time.perf_counter() - started)
    assert session.texts(owner)[-1] == f"echo: message {args.messages - 1}", session.texts(owner)[-1]
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    outside = 2 * llm_round_trip + tool_call
    print(f"per message, {args.messages} in a row, LLM answering at once, one tool call each:")
    print(f"  p50 {ms(p50)}   p95 {ms(p95)}   (target: p50 <= 30 ms)")
    print(
        f"  outside the bot (medians, measured alone): LLM round trip {ms(llm_round_trip)} (x2), "
        f"tool call {ms(tool_call)}"
    )
    print(f"  the bot's own share at p50: {ms(p50 - outside)}")

    async def first_message(user_id: int) -> float:
        started = time.perf_counter()
        await dp.feed_update(bot, text_update(user_id, f"hello from {user_id}"))
        return time.perf_counter() - started

    # Each user's first message opens their MCP connection: measured apart, it is paid once per process.
    first = await asyncio.gather(*(first_message(user_id) for user_id in range(1, args.users + 1)))
    session.calls.clear()

    async def one_user(user_id: int) -> list[float]:
        times = []
        for n in range(args.per_user):
            started = time.perf_counter()
            await dp.feed_update(bot, text_update(user_id, f"user {user_id} message {n}"))
            times.append(time.perf_counter() - started)
        return times

    started = time.perf_counter()
    per_user = await asyncio.gather(*(one_user(user_id) for user_id in range(1, args.users + 1)))
    wall = time.perf_counter() - started
    total = args.users * args.per_user
    wrong = [
        (call.chat_id, call.text)
        for call in session.sent()
        if not call.text.startswith(f"echo: user {call.chat_id} message ")
    ]
    answered = sum(
        session.texts(user_id) == [f"echo: user {user_id} message {n}" for n in range(args.per_user)]
        for user_id in range(1, args.users + 1)
    )
    loaded = [latency for times in per_user for latency in times]
    print(
        f"\n{args.users} users x {args.per_user} messages at once: "
        f"{total} messages in {wall:.2f} s ({total / wall:.0f}/s)"
    )
    print(f"  latency p50 {ms(percentile(loaded, 0.5))}   p95 {ms(percentile(loaded, 0.95))}")
    print(
        "  (before that, each user's first message, all at once, opening its MCP connection: "
        f"p50 {ms(percentile(first, 0.5))})"
    )
    print(f"  users answered fully and in order: {answered}/{args.users}; replies in a wrong chat: {len(wrong)}")
    await backends.close()
    store.close()
    if answered != args.users or wrong:
        raise SystemExit(f"FAILED: {wrong[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages in a row for the overhead figure")
    parser.add_argument("--users", type=int, default=20, help="users at once for the load figure")
    parser.add_argument("--per-user", type=int, default=10, help="messages each of them sends")
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
        data_dir = Path(tmp)
        mcp_port, standin_port = free_port(), free_port()
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/butler.db",
            "MCP_AUTH_TOKEN": TOKEN,
            "BUTLER_ENV": "development",
            "LOG_LEVEL": "WARNING",
        }
        with uvicorn_process("mcp_server.app:app", mcp_port, env), standin_process(standin_port) as standin_url:
            asyncio.run(run(args, standin_url, f"http://127.0.0.1:{mcp_port}/mcp", data_dir))


if __name__ == "__main__":
    main()

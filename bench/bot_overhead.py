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
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from bench.mcp_tools import free_port, uvicorn_process
from bench.table import Row
from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook
from butler_bot.tools import McpTools
from shared.logging import configure_logging
from tests.butler_bot.fakes import recording_bot, text_update

TOKEN = "bench-token-0123456789abcdef"
P50_TARGET_MS = 30.0
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


def unstamped(echo: str) -> str:
    """The stand-in's echo without the local time the bot puts before each user message ("[14:05] ")."""
    return re.sub(r"^echo: \[\d\d:\d\d\] ", "echo: ", echo)


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


@dataclass
class Overhead:
    messages: int
    p50: float
    p95: float
    llm_round_trip: float
    tool_call: float
    users: int
    per_user: int
    wall: float
    loaded_p50: float
    loaded_p95: float
    first_p50: float
    answered: int
    wrong_chat: int

    @property
    def outside(self) -> float:
        """What a message waits for outside the bot: two model round trips and one tool call."""
        return 2 * self.llm_round_trip + self.tool_call


async def measure(args: argparse.Namespace, standin_url: str, mcp_url: str, data_dir: Path) -> Overhead:
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
    last = unstamped(session.texts(owner)[-1])
    assert last == f"echo: message {args.messages - 1}", f"expected the last message echoed; saw {last!r}"

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
    wrong = [
        (call.chat_id, call.text)
        for call in session.sent()
        if not unstamped(call.text).startswith(f"echo: user {call.chat_id} message ")
    ]
    answered = sum(
        [unstamped(text) for text in session.texts(user_id)]
        == [f"echo: user {user_id} message {n}" for n in range(args.per_user)]
        for user_id in range(1, args.users + 1)
    )
    loaded = [latency for times in per_user for latency in times]
    await backends.close()
    store.close()
    return Overhead(
        messages=args.messages,
        p50=percentile(latencies, 0.5),
        p95=percentile(latencies, 0.95),
        llm_round_trip=llm_round_trip,
        tool_call=tool_call,
        users=args.users,
        per_user=args.per_user,
        wall=wall,
        loaded_p50=percentile(loaded, 0.5),
        loaded_p95=percentile(loaded, 0.95),
        first_p50=percentile(first, 0.5),
        answered=answered,
        wrong_chat=len(wrong),
    )


def report(result: Overhead) -> None:
    print(f"per message, {result.messages} in a row, LLM answering at once, one tool call each:")
    print(f"  p50 {ms(result.p50)}   p95 {ms(result.p95)}   (target: p50 <= {P50_TARGET_MS:g} ms)")
    print(
        f"  outside the bot (medians, measured alone): LLM round trip {ms(result.llm_round_trip)} (x2), "
        f"tool call {ms(result.tool_call)}"
    )
    print(f"  the bot's own share at p50: {ms(result.p50 - result.outside)}")
    total = result.users * result.per_user
    print(
        f"\n{result.users} users x {result.per_user} messages at once: "
        f"{total} messages in {result.wall:.2f} s ({total / result.wall:.0f}/s)"
    )
    print(f"  latency p50 {ms(result.loaded_p50)}   p95 {ms(result.loaded_p95)}")
    print(
        "  (before that, each user's first message, all at once, opening its MCP connection: "
        f"p50 {ms(result.first_p50)})"
    )
    print(
        f"  users answered fully and in order: {result.answered}/{result.users}; replies in a wrong chat: "
        f"{result.wrong_chat}"
    )


def rows(result: Overhead) -> list[Row]:
    total = result.users * result.per_user
    return [
        Row(
            "bot overhead",
            f"per message, model and tool answering at once: p50 / p95 ({result.messages} in a row)",
            f"{ms(result.p50).strip()} / {ms(result.p95).strip()}",
            f"p50 ≤ {P50_TARGET_MS:g} ms",
            f"outside the bot: {ms(result.outside).strip()} (2 model round trips + 1 tool call); "
            f"bot's own share {ms(result.p50 - result.outside).strip()}",
            result.p50 <= P50_TARGET_MS / 1000,
        ),
        Row(
            "bot overhead",
            f"{result.users} users x {result.per_user} messages at once: p50 / p95",
            f"{ms(result.loaded_p50).strip()} / {ms(result.loaded_p95).strip()}, {total / result.wall:.0f} msg/s",
            "every reply in its own chat",
            f"answered {result.answered}/{result.users} users fully, {result.wrong_chat} in a wrong chat",
            result.answered == result.users and not result.wrong_chat,
        ),
    ]


def run(messages: int = 200, users: int = 20, per_user: int = 10) -> Overhead:
    args = argparse.Namespace(messages=messages, users=users, per_user=per_user)
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
            return asyncio.run(measure(args, standin_url, f"http://127.0.0.1:{mcp_port}/mcp", data_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages in a row for the overhead figure")
    parser.add_argument("--users", type=int, default=20, help="users at once for the load figure")
    parser.add_argument("--per-user", type=int, default=10, help="messages each of them sends")
    args = parser.parse_args()
    result = run(args.messages, args.users, args.per_user)
    report(result)
    if result.answered != result.users or result.wrong_chat:
        raise SystemExit("FAILED: some users were not answered fully, or a reply reached a wrong chat")


if __name__ == "__main__":
    main()

"""Load through the whole dev stack: many users chatting at once, and a thousand reminders due in one minute.

The emulator plays Telegram, the scripted stand-in plays the model (one tool call, then an echo), the MCP server
is real. Latency is read from the emulator's own clock: from the user's message to the bot's reply, as stored.
tests/e2e/test_load.py asserts on these measurements and `make bench` (bench/load.py) prints them.
"""

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.stack import EMULATOR_TOKEN, MCP_TOKEN, WITHOUT_MODEL, Stack, stack_of_its_own

# The containers whose memory is measured: the model is not used here.
SERVICES = WITHOUT_MODEL
# Each message costs two model requests and one MCP tool call, as a simple real request does.
ONE_TOOL_CALL = {
    "when": "",
    "replies": [{"tool_calls": [{"name": "time_now", "arguments": {}}]}, {"content": "echo: {last_user}"}],
}
MESSAGE = re.compile(r"load (\d+) #(\w+)")
REMINDER = "⏰ Reminder: "
# Generous bounds on a shared 2-core machine; the measured figures are printed beside them.
CHAT_TIMEOUT = 180.0
# Every user's first message at once: the bot opens their MCP sessions a few at a time (butler_bot.tools), so a
# burst of first messages is answered, not timed out.
ARRIVALS_AT_ONCE = 50
# What 1,000 reminders due at the same second are given to arrive, each once.
REMINDERS_BOUND = timedelta(minutes=5)


class ProductionTimeoutStack(Stack):
    """The e2e stack with the bot's default LLM_TIMEOUT (60 s) instead of the fault tests' 5 s."""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "LLM_TIMEOUT": "60"}


@contextmanager
def load_stack(workdir: Path) -> Iterator[Stack]:
    """Its own Compose v2 stack from a copy of the repo in `workdir`, so peak memory is this load's alone."""
    with stack_of_its_own(workdir, ProductionTimeoutStack) as running:
        LlmStandIn(f"http://127.0.0.1:{running.llm_standin_port}").script(ONE_TOOL_CALL)
        yield running


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def history(stack: Stack) -> list[dict[str, Any]]:
    """Every message the emulator holds, the users' and the bot's, oldest first, each with its time in ms."""
    response = httpx.post(
        f"http://127.0.0.1:{stack.emulator_port}/getUpdatesHistory", json={"token": EMULATOR_TOKEN}, timeout=30
    )
    return response.json()["result"]


def bot_messages(stack: Stack) -> list[dict[str, Any]]:
    return [entry for entry in history(stack) if "chat_id" in entry["message"]]


def echoed(text: str) -> str:
    """The user's text in the stand-in's echo, without the local time the bot puts before it ("[14:05] ")."""
    return re.sub(r"^echo: (\[\d\d:\d\d\] )?", "", text)


@dataclass
class Replies:
    """The bot's replies to load users, read from the emulator's log, with the latency of each echo."""

    latencies: list[float]
    echoes: dict[int, list[str]]
    # An echo of another user's message: a reply in the wrong chat.
    wrong_chat: list[tuple[int, str]]
    # Any other reply: an error the user was shown instead of the answer.
    not_echoes: list[tuple[int, str]]

    @classmethod
    def read(cls, entries: list[dict[str, Any]], users: Sequence[int]) -> "Replies":
        sent_at = {entry["message"]["text"]: entry["time"] for entry in entries if "from" in entry["message"]}
        replies = cls(latencies=[], echoes={user_id: [] for user_id in users}, wrong_chat=[], not_echoes=[])
        for entry in entries:
            message = entry["message"]
            chat = int(message.get("chat_id", 0))
            if chat not in replies.echoes:
                continue
            text = echoed(message["text"])
            match = MESSAGE.fullmatch(text)
            if match is None or int(match[1]) != chat:
                (replies.not_echoes if match is None else replies.wrong_chat).append((chat, message["text"]))
                continue
            replies.echoes[chat].append(text)
            if text in sent_at:
                replies.latencies.append((entry["time"] - sent_at[text]) / 1000)
        return replies


@dataclass
class ChatLoad:
    users: int
    per_user: int
    # Each user's first message, a few users at a time, before the load: it opens the user's MCP session.
    arrivals: Replies
    load: Replies
    wall: float
    answered_in_order: int
    unanswered: list[str]

    @property
    def p50(self) -> float:
        return percentile(self.load.latencies, 0.5)

    @property
    def p95(self) -> float:
        return percentile(self.load.latencies, 0.95)

    def summary(self) -> str:
        total = self.users * self.per_user
        return (
            f"{self.users} users x {self.per_user} messages at once: {len(self.load.latencies)}/{total} answered in "
            f"{self.wall:.1f} s ({total / self.wall:.1f} msg/s); latency p50 {self.p50:.2f} s, p95 {self.p95:.2f} s, "
            f"max {max(self.load.latencies, default=0):.2f} s; {len(self.load.wrong_chat)} in a wrong chat, "
            f"{len(self.load.not_echoes)} errors\n"
            f"  before that, each user's first message ({ARRIVALS_AT_ONCE} users at a time): "
            f"p50 {percentile(self.arrivals.latencies, 0.5):.2f} s, {len(self.arrivals.not_echoes)} errors"
        )


async def chat_as(
    http: httpx.AsyncClient, user_id: int, texts: list[str], reply_wait: float, gate: asyncio.Semaphore
) -> None:
    """One user: send a message, wait for the reply, send the next; give up on the rest after a reply never came."""
    async with gate:
        for text in texts:
            message = {"token": EMULATOR_TOKEN, "user_id": user_id, "text": text}
            (await http.post("/sendMessage", json=message)).raise_for_status()
            deadline = time.monotonic() + reply_wait
            poll = {"token": EMULATOR_TOKEN, "chat_id": user_id}
            while not (await http.post("/getUpdates", json=poll)).json()["result"]:
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.5)


async def _chat(stack: Stack, plan: dict[int, list[str]], reply_wait: float, at_once: int) -> float:
    limits = httpx.Limits(max_connections=len(plan) + 5)
    gate = asyncio.Semaphore(at_once)
    emulator = f"http://127.0.0.1:{stack.emulator_port}"
    async with httpx.AsyncClient(base_url=emulator, limits=limits, timeout=30) as http:
        started = time.perf_counter()
        await asyncio.gather(*(chat_as(http, user_id, texts, reply_wait, gate) for user_id, texts in plan.items()))
        return time.perf_counter() - started


def measure_chat_load(stack: Stack, users: Sequence[int], per_user: int, reply_wait: float = CHAT_TIMEOUT) -> ChatLoad:
    """All users chat at once, each waiting for the answer before the next message; latency from the emulator's log.

    Before that, users arrive a few at a time and say hello: the bot opens each user's MCP session on their
    first message, and a burst of such openings is measured apart (see ARRIVALS_AT_ONCE).
    """
    asyncio.run(_chat(stack, {user_id: [f"load {user_id} #hello"] for user_id in users}, reply_wait, ARRIVALS_AT_ONCE))
    before = history(stack)
    cutoff = max(entry["time"] for entry in before)
    plan = {user_id: [f"load {user_id} #{n}" for n in range(per_user)] for user_id in users}
    wall = asyncio.run(_chat(stack, plan, reply_wait, len(users)))
    load = Replies.read([entry for entry in history(stack) if entry["time"] > cutoff], users)
    return ChatLoad(
        users=len(users),
        per_user=per_user,
        arrivals=Replies.read(before, users),
        load=load,
        wall=wall,
        answered_in_order=sum(load.echoes[user_id] == plan[user_id] for user_id in users),
        unanswered=[text for user_id in users for text in plan[user_id] if text not in load.echoes[user_id]],
    )


def peak_memory(stack: Stack, services: Sequence[str] = SERVICES) -> dict[str, int]:
    """Each container's peak memory since it started, in bytes."""
    return {service: stack.peak_memory(service) for service in services}


def memory_summary(peaks: dict[str, int]) -> str:
    return ", ".join(f"{service} {peak / 2**20:.0f} MiB" for service, peak in peaks.items())


async def _create_reminders(stack: Stack, users: Sequence[int], per_user: int, due: datetime) -> list[str]:
    """Each user's reminders through the MCP server's own tool, one session per user, all users at once."""
    url = f"http://127.0.0.1:{stack.mcp_port}/mcp"
    errors: list[str] = []

    async def for_user(user_id: int) -> None:
        headers = {"Authorization": f"Bearer {MCP_TOKEN}", "X-Telegram-User-Id": str(user_id)}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for n in range(per_user):
                arguments = {"text": f"due {user_id} #{n}", "at": due.isoformat(timespec="seconds")}
                result = await client.call_tool("reminders_create", arguments)
                if result.is_error:
                    errors.append(f"user {user_id} #{n}: {result.content}")

    await asyncio.gather(*(for_user(user_id) for user_id in users))
    return errors


def create_reminders(stack: Stack, users: Sequence[int], per_user: int, due: datetime) -> list[str]:
    """Set `per_user` reminders for each user, all due at `due`; the tool errors, if any."""
    return asyncio.run(_create_reminders(stack, users, per_user, due))


@dataclass
class ReminderLoad:
    count: int
    # Seconds it took to set them all through the MCP tool, 50 sessions at once.
    created_in: float
    due: datetime
    delivered: Counter[tuple[int, str]]
    first: datetime | None
    last: datetime | None

    def summary(self) -> str:
        if self.first is None or self.last is None:
            return f"{self.count} reminders due at once (set in {self.created_in:.1f} s): none delivered"
        first, last = (self.first - self.due).total_seconds(), (self.last - self.due).total_seconds()
        return (
            f"{self.count} reminders due at once (set in {self.created_in:.1f} s): {sum(self.delivered.values())} "
            f"delivered, the first {first:.1f} s and the last {last:.1f} s after they fell due "
            f"({self.count / max(last, 1):.0f}/s)"
        )


def delivered_reminders(stack: Stack) -> list[dict[str, Any]]:
    return [entry for entry in bot_messages(stack) if entry["message"]["text"].startswith(REMINDER)]


def measure_reminder_load(stack: Stack, users: Sequence[int], per_user: int, bound: timedelta) -> ReminderLoad:
    """Set users x per_user reminders due at the same second, then wait up to `bound` for every one to arrive."""
    count = len(users) * per_user
    # Room to set them all before they fall due: 1,000 took 12 s on the shared 2-core machine, this allows 43 s.
    due = (datetime.now(UTC) + timedelta(seconds=10 + count / 30)).replace(microsecond=0)
    started = time.perf_counter()
    errors = create_reminders(stack, users, per_user, due)
    created_in = time.perf_counter() - started
    assert not errors, f"expected all {count} reminders set before {due:%H:%M:%S}; {len(errors)} refused: {errors[:3]}"
    assert datetime.now(UTC) < due, f"expected the reminders set before they fall due at {due:%H:%M:%S}; it is later"
    deadline = due + bound
    while datetime.now(UTC) < deadline and len(delivered_reminders(stack)) < count:
        time.sleep(2)
    time.sleep(3)  # a duplicate would come right behind
    arrived = delivered_reminders(stack)
    times = [datetime.fromtimestamp(entry["time"] / 1000, UTC) for entry in arrived]
    return ReminderLoad(
        count=count,
        created_in=created_in,
        due=due,
        delivered=Counter((int(entry["message"]["chat_id"]), entry["message"]["text"]) for entry in arrived),
        first=min(times, default=None),
        last=max(times, default=None),
    )


def pending_reminders(stack: Stack, users: Sequence[int]) -> dict[int, int]:
    """How many reminders each user still has pending on the server."""

    async def pending(user_id: int) -> int:
        headers = {"Authorization": f"Bearer {MCP_TOKEN}", "X-Telegram-User-Id": str(user_id)}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{stack.mcp_port}/mcp", http_client=http)) as client,
        ):
            result = await client.call_tool("reminders_list", {"limit": 100})
            assert not result.is_error and result.structured_content is not None, f"expected a list; saw {result}"
            return len(result.structured_content["reminders"])

    async def all_users() -> list[int]:
        return await asyncio.gather(*(pending(user_id) for user_id in users))

    return dict(zip(users, asyncio.run(all_users()), strict=True))

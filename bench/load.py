"""The load figures through the whole dev stack: 50 users x 10 messages at once, 1,000 reminders due at once.

Run it from the repository root (Docker running):  .venv/bin/python -m bench.load

The measuring code is tests/e2e/load.py, shared with tests/e2e/test_load.py, which asserts on the same figures:
the emulator plays Telegram, the scripted stand-in the model (one tool call, then an echo), the MCP server is real,
latency comes from the emulator's own clock. One user alone on the same stack first gives the reference latency.
"""

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.table import Row
from tests.e2e.load import (
    REMINDER,
    REMINDERS_BOUND,
    SERVICES,
    ChatLoad,
    ReminderLoad,
    load_stack,
    measure_chat_load,
    measure_reminder_load,
    memory_summary,
    peak_memory,
)
from tests.e2e.stack import LOAD_USERS

MESSAGES_PER_USER = 10
REMINDERS_PER_USER = 20
# The compose file's mem_limit for the bot and the MCP server.
MEMORY_LIMIT = 512 * 2**20


@dataclass
class Load:
    alone: ChatLoad
    chats: ChatLoad
    reminders: ReminderLoad
    # Each container's peak memory since the stack started, after both loads.
    peaks: dict[str, int]


def run() -> Load:
    with tempfile.TemporaryDirectory(prefix="butler-bench-load-") as tmp, load_stack(Path(tmp)) as stack:
        # The reference: the last load user alone, before the others arrive.
        alone = measure_chat_load(stack, LOAD_USERS[-1:], MESSAGES_PER_USER)
        chats = measure_chat_load(stack, LOAD_USERS, MESSAGES_PER_USER)
        reminders = measure_reminder_load(stack, LOAD_USERS, REMINDERS_PER_USER, REMINDERS_BOUND)
        return Load(alone, chats, reminders, peak_memory(stack, SERVICES))


def rows(result: Load) -> list[Row]:
    chats, reminders = result.chats, result.reminders
    total = chats.users * chats.per_user
    answered = total - len(chats.unanswered)
    chats_ok = not chats.unanswered and not chats.load.wrong_chat and not chats.load.not_echoes
    if reminders.last is None:
        delivered = "none delivered"
        all_in_time = False
    else:
        last = (reminders.last - reminders.due).total_seconds()
        delivered = f"{sum(reminders.delivered.values()):,} delivered, the last {last:.1f} s after they fell due"
        expected = Counter(
            (user_id, f"{REMINDER}due {user_id} #{n}") for user_id in LOAD_USERS for n in range(REMINDERS_PER_USER)
        )
        all_in_time = reminders.delivered == expected and last <= REMINDERS_BOUND.total_seconds()
    first = "" if reminders.first is None else f", the first {(reminders.first - reminders.due).total_seconds():.1f} s"
    limited = {service: peak for service, peak in result.peaks.items() if service in ("mcp-server", "butler-bot")}
    return [
        Row(
            "load",
            f"{chats.users} users x {chats.per_user} messages at once (stand-in model, 1 tool call each): p50 / p95",
            f"{chats.p50:.2f} / {chats.p95:.2f} s, {total / chats.wall:.1f} msg/s; {answered}/{total} answered, "
            f"{len(chats.load.wrong_chat)} in a wrong chat, {len(chats.load.not_echoes)} errors",
            "all answered, none in a wrong chat",
            f"one user alone, same stack: {result.alone.p50:.2f} / {result.alone.p95:.2f} s",
            chats_ok,
        ),
        Row(
            "load",
            f"{reminders.count:,} reminders due at the same second: time to deliver all",
            delivered,
            f"each once within {REMINDERS_BOUND.total_seconds() / 60:.0f} min",
            f"setting them through the MCP tool (50 sessions at once): {reminders.created_in:.1f} s{first}",
            all_in_time,
        ),
        Row(
            "load",
            "peak memory per container, since start through both loads (the cgroup's own peak)",
            memory_summary(result.peaks),
            f"mcp-server, butler-bot ≤ {MEMORY_LIMIT / 2**20:.0f} MiB (mem_limit)",
            "",
            all(peak <= MEMORY_LIMIT for peak in limited.values()),
        ),
    ]


def main() -> None:
    result = run()
    print(result.alone.summary())
    print(result.chats.summary())
    print(result.reminders.summary())
    print(f"peak memory since start: {memory_summary(result.peaks)}")
    for row in rows(result):
        print(row)


if __name__ == "__main__":
    main()

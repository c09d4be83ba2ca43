"""`make bench`: every benchmark in one table, printed and written to bench/RESULTS.md with the machine it ran on.

    .venv/bin/python -m bench [--max-tokens N] [--dev-loop-runs N] [--skip dev-loop ...] [--note "..."]

Sections, in this order (the real model first; a section that fails shows as a failed row, the rest still run):
- conversation: ten messages through the real stack with SmolLM2-135M (bench/conversation.py);
- mcp-tools: tool-call latency and throughput against a same-SDK echo server (bench/mcp_tools.py);
- bot-overhead: the bot's own time per message, alone and with 20 users at once (bench/bot_overhead.py);
- dev-loop: save, then use the new code: hot reload against Compose Watch and a bare start (bench/dev_loop.py);
- dev-stack: `make dev` warm start, the idle stack (also polling), rebuilds, image sizes (bench/dev_stack.py);
- load: 50 users x 10 messages at once, 1,000 reminders due at once, peak memory (bench/load.py).
"""

import argparse
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import bot_overhead, conversation, dev_loop, dev_stack, load, mcp_tools
from bench.table import Row, markdown_table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTIONS = ("conversation", "mcp-tools", "bot-overhead", "dev-loop", "dev-stack", "load")


def command_output(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def machine() -> str:
    engine = command_output("docker", "version", "--format", "{{.Server.Version}}")
    compose = command_output("docker", "compose", "version", "--short")
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), Docker Engine {engine}, Docker Compose {compose}, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def other_containers() -> int:
    return len(command_output("docker", "ps", "--quiet").split())


def guarded(section: str, measure: Callable[[], list[Row]], contention: list[str]) -> list[Row]:
    """The section's rows, or one row saying why it failed: a broken section must not hide the others. Appends to
    `contention` how long it took and how busy the machine was (the 1-minute load average before and after)."""
    print(f"== {section}", flush=True)
    before, others, started = os.getloadavg()[0], other_containers(), time.monotonic()
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        return [Row(section, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else "")]
    finally:
        contention.append(
            f"{section}: {(time.monotonic() - started) / 60:.1f} min, load {before:.1f} → {os.getloadavg()[0]:.1f}, "
            f"{others} container(s) running before"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, help="bound each real-model answer (default: the bot's own)")
    parser.add_argument("--dev-loop-runs", type=int, default=10, help="saves timed per service in the dev loop")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[], help="sections to leave out")
    parser.add_argument("--note", default="", help="a sentence for RESULTS.md, e.g. what else ran on the machine")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    started_at, started = datetime.now(UTC), time.monotonic()
    load_before, containers_before = load_average(), other_containers()
    rows: list[Row] = []
    contention: list[str] = []
    talk: conversation.Conversation | None = None
    if "conversation" not in args.skip:

        def real_model() -> list[Row]:
            nonlocal talk
            talk = conversation.run(max_tokens=args.max_tokens)
            return conversation.rows(talk)

        rows += guarded("real model (SmolLM2-135M)", real_model, contention)
    if "mcp-tools" not in args.skip:
        rows += guarded("MCP tools", lambda: mcp_tools.rows(mcp_tools.run()), contention)
    if "bot-overhead" not in args.skip:
        rows += guarded("bot overhead", lambda: bot_overhead.rows(bot_overhead.run()), contention)
    if "dev-loop" not in args.skip:
        rows += guarded("dev loop", lambda: dev_loop.rows(dev_loop.run(args.dev_loop_runs)), contention)
    if "dev-stack" not in args.skip:
        rows += guarded("dev stack", lambda: dev_stack.rows(dev_stack.run()), contention)
    if "load" not in args.skip:
        rows += guarded("load", lambda: load.rows(load.run()), contention)
    minutes = (time.monotonic() - started) / 60

    contended = float(load_before.split(" / ")[0]) >= 1.0 or containers_before > 0
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {started_at:%Y-%m-%d %H:%M} UTC in {minutes:.1f} min. Do not edit by hand.",
        "",
        f"- Machine: {machine()}.",
        f"- Load average (1 / 5 / 15 min): {load_before} at the start, {load_average()} at the end; "
        f"{containers_before} other container(s) running at the start.",
    ]
    if contended:
        lines.append(
            "- **Contended run**: other work shared the CPU, so times (not token counts) are worse than on an idle "
            "machine."
        )
    if args.note:
        lines.append(f"- Note: {args.note}")
    if contention:
        lines.append("- Each section: " + "; ".join(contention) + ".")
    lines += ["", markdown_table(rows), ""]
    if talk is not None:
        bound = f"{talk.max_tokens} tokens (set for this run)" if talk.max_tokens else "the bot's default"
        lines += [
            "## The real-model conversation, message by message",
            "",
            f"SmolLM2-135M-Instruct Q4_1 in the project's mistral image (shipped tool-aware Mistral v3 template, "
            f"context {conversation.CTX_SIZE}), every tool enabled, answers bounded at {bound}; "
            f"{talk.seconds / 60:.1f} min with the stack's build and start.",
            "",
            "- sent / evaluated / cached: llama-server's /metrics counters (`prompt_tokens_total` is `prompt_n`, "
            "`prompt_tokens_cached_total` is `cache_n`), summed over the message's requests.",
            "- bot log P / E: the bot's own line, the last request's prompt and the tokens evaluated anew in all.",
            "- first draft: the first `sendMessageDraft` the emulator saw (streamed text or a tool line); answer: "
            "the final message.",
            "- Mistral-7B tokens: each request as llama-server rendered it (`--log-prompts-dir`), read with "
            "Mistral-7B-v0.3's tokenizer (mistral-common). new: message 1's whole prompt, then the tokens beyond "
            "the prefix each request shares with the one before (the previous answer included); beyond cache: "
            "past the previous request and its answer, what a server that keeps its answers evaluates anew.",
            "",
            conversation.turn_table(talk),
            "",
        ]
    text = "\n".join(lines)
    args.output.write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

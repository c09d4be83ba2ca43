"""The development loop in numbers: reload latency against each process's bare start, stack start, rebuild, sizes.

Run it from the repository root (Docker running; the images are built on the way):

    .venv/bin/python -m bench.dev_loop [--runs 20]

It starts the dev stack from a copy of the tree (so edits never touch yours), then for each service:
- reload: a poller inside the container watches /health while the host saves a .py file; the time from the
  save to the new code answering (the MCP server's /health version, the bot's new pid ready to poll);
- floor: the same process started from scratch in the same container (uvicorn on a spare port; the bot with
  its own token and health port), timed to its first good /health.
Both sides poll every 20 ms and share the kernel's clock. Then: `up -d` from built images to all healthy,
a code-only rebuild, and the image sizes.
"""

import argparse
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.table import Row
from tests.e2e.stack import COMPOSE_FLAVOURS, Stack, copy_worktree
from tests.e2e.tiny_gguf import write_tiny_gguf

# Runs inside a container: wait for a /health answer that differs from the first one, print when it came.
RELOAD_POLLER = """
import json, sys, time, urllib.request
url, key = sys.argv[1], sys.argv[2]
def read():
    try:
        body = json.load(urllib.request.urlopen(url, timeout=1))
        return body.get(key) if body.get("status") == "ok" else None
    except Exception:
        return None
first = read()
print("ready", flush=True)
while True:
    value = read()
    if value is not None and value != first:
        print(time.time(), flush=True)
        break
    time.sleep(0.02)
"""

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


def reload_seconds(stack: Stack, service: str, url: str, key: str, relative: str, edit_line: str) -> float:
    """Save a .py file on the host and time it until the service in the container answers with new code."""
    poller = subprocess.Popen(
        stack.argv("exec", "-T", service, "python", "-c", RELOAD_POLLER, url, key),
        cwd=stack.workdir,
        env=stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout and poller.stdout.readline().strip() == "ready"
    saved_at = time.time()
    stack.edit(relative, lambda text: text + edit_line.format(token=secrets.token_hex(4)))
    line = poller.stdout.readline()
    poller.wait(timeout=60)
    return float(line) - saved_at


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
class DevLoop:
    runs: int
    compose: str
    mcp_reloads: list[float]
    mcp_floors: list[float]
    bot_reloads: list[float]
    bot_floors: list[float]
    up_seconds: float
    rebuild_seconds: float
    image_mb: dict[str, float]


def summary(name: str, reloads: list[float], floors: list[float]) -> None:
    (r50, r90), (f50, f90) = percentiles(reloads), percentiles(floors)
    print(
        f"{name:11} reload p50 {r50:5.2f} s  p90 {r90:5.2f} s | start floor p50 {f50:5.2f} s  p90 {f90:5.2f} s"
        f" | reload/floor p50 {r50 / f50:4.2f}x"
    )


def report(result: DevLoop) -> None:
    print(f"dev loop, {result.runs} runs each, {result.compose}")
    summary("mcp-server", result.mcp_reloads, result.mcp_floors)
    summary("butler-bot", result.bot_reloads, result.bot_floors)
    print(f"up -d from built images to all healthy: {result.up_seconds:.1f} s")
    print(f"code-only rebuild of mcp-server and butler-bot: {result.rebuild_seconds:.1f} s")
    for image, size in result.image_mb.items():
        print(f"image butler-agent/{image}: {size:.0f} MB")


def rows(result: DevLoop) -> list[Row]:
    table = []
    for service, reloads, floors, what in (
        ("mcp-server", result.mcp_reloads, result.mcp_floors, "save → new code answers /health"),
        ("butler-bot", result.bot_reloads, result.bot_floors, "save → new process ready to poll"),
    ):
        (r50, r90), (f50, f90) = percentiles(reloads), percentiles(floors)
        table.append(
            Row(
                "dev loop",
                f"{service} hot reload, {what}: p50 / p90 ({result.runs} runs)",
                f"{r50:.2f} / {r90:.2f} s",
                "",
                f"bare start of the same process: {f50:.2f} / {f90:.2f} s ({r50 / f50:.2f}x at p50)",
            )
        )
    table.append(Row("dev loop", "`up -d` from built images to all healthy", f"{result.up_seconds:.1f} s"))
    table.append(Row("dev loop", "code-only rebuild of mcp-server and butler-bot", f"{result.rebuild_seconds:.1f} s"))
    sizes = ", ".join(f"{image} {size:.0f} MB" for image, size in result.image_mb.items())
    table.append(Row("dev loop", "image sizes", sizes))
    return table


def run(runs: int = 20, compose: str = "compose-v2") -> DevLoop:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(workdir=copy_worktree(Path(tmp) / "tree"), compose=COMPOSE_FLAVOURS[compose])
        stack.run("build", timeout=3600)
        model = Path(tmp) / "tiny.gguf"
        write_tiny_gguf(model)
        try:
            # The model is on its volume before the clock starts, as for `make dev` after the first download.
            stack.run("create")
            subprocess.run(
                ["docker", "cp", str(model), f"{stack.container_id('mistral')}:/models/tiny.gguf"], check=True
            )
            started = time.monotonic()
            stack.run("up", "-d")
            stack.wait_healthy("mcp-server", "telegram-emulator", "butler-bot", "mistral")
            up_seconds = time.monotonic() - started

            mcp_reloads, mcp_floors, bot_reloads, bot_floors = [], [], [], []
            for _ in range(runs):
                mcp_reloads.append(
                    reload_seconds(
                        stack,
                        "mcp-server",
                        "http://127.0.0.1:8000/health",
                        "version",
                        "shared/version.py",
                        '\nVERSION = "bench-{token}"\n',
                    )
                )
                mcp_floors.append(
                    floor_seconds(
                        stack,
                        "mcp-server",
                        "http://127.0.0.1:8011/health",
                        ["uvicorn", "mcp_server.app:app", "--port", "8011"],
                        {},
                    )
                )
            for _ in range(runs):
                bot_reloads.append(
                    reload_seconds(
                        stack,
                        "butler-bot",
                        "http://127.0.0.1:8090/health",
                        "pid",
                        "butler_bot/handlers/start.py",
                        "\n# bench {token}\n",
                    )
                )
                bot_floors.append(
                    floor_seconds(
                        stack,
                        "butler-bot",
                        "http://127.0.0.1:8091/health",
                        ["python", "-m", "butler_bot"],
                        {"TELEGRAM_BOT_TOKEN": "777:bench-floor", "HEALTH_PORT": "8091"},
                    )
                )

            (stack.workdir / "mcp_server/app.py").write_text((stack.workdir / "mcp_server/app.py").read_text() + "\n")
            started = time.monotonic()
            stack.run("build", "mcp-server", "butler-bot")
            rebuild_seconds = time.monotonic() - started
        finally:
            stack.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

    image_mb = {}
    for image in ("mcp-server", "butler-bot", "mistral", "telegram-emulator"):
        inspect = subprocess.run(
            ["docker", "image", "inspect", f"butler-agent/{image}:latest"], capture_output=True, text=True, check=True
        )
        image_mb[image] = json.loads(inspect.stdout)[0]["Size"] / 1e6
    return DevLoop(
        runs, compose, mcp_reloads, mcp_floors, bot_reloads, bot_floors, up_seconds, rebuild_seconds, image_mb
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compose", choices=list(COMPOSE_FLAVOURS), default="compose-v2")
    args = parser.parse_args()
    report(run(args.runs, args.compose))


if __name__ == "__main__":
    main()

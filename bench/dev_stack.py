"""`make dev` as a developer runs it: warm start to all healthy, idle CPU, memory and log lines, rebuilds, sizes.

Run it from the repository root (Docker running):  .venv/bin/python -m bench.dev_stack [--idle 60]

Everything runs the copied Makefile's own targets in a copy of the tree (its own compose project and ports; the
tiny test model in the models volume, so `make dev`'s model check finds it there):
1. `make dev`, attached as the guide runs it, to all four services healthy (Docker's healthchecks); Ctrl+C.
2. `make dev` again, images built and nothing changed: the warm start. Then the idle stack for a minute: CPU
   and memory per container (Docker's stats API, as `docker stats` reads it) and the lines `make dev` printed.
3. Ctrl+C, and the same with WATCHFILES_FORCE_POLLING=true (as on Docker Desktop): both reloaders poll.
4. `make rebuild` under a throwaway image tag: nothing changed, a code-only change, and a dependency-layer
   change (a comment in the copy's pyproject.toml: uv sync runs again from its warm cache, nothing to download).
5. The size of each image.
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.table import Row
from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, DEV_FILE, Stack, copy_worktree
from tests.e2e.tiny_gguf import write_tiny_gguf

SERVICES = ("mcp-server", "butler-bot", "mistral", "telegram-emulator")
# What the Makefile exports for the dev targets when .env sets nothing (it picks the emulator then).
MAKE_EXPORTS = {
    "MCP_AUTH_TOKEN": "dev-only-mcp-token",
    "TELEGRAM_BOT_TOKEN": "123456:dev-only-emulator-token",
    "TELEGRAM_API_URL": "http://telegram-emulator:8081",
    "ALLOWED_USER_IDS": "1",
}
DOCKER_SOCKET = "/var/run/docker.sock"
# The stack is idle once `make dev` has printed nothing for this long (start-up lines come in bursts).
QUIET_SECONDS = 5
# What the issue allows an idle `make dev` to print.
LOG_LINES_TARGET = 1


class MakeDevStack(Stack):
    """The project `make dev` starts in the copy: the Makefile's own files and the environment it exports."""

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **MAKE_EXPORTS,
            "COMPOSE_PROJECT_NAME": self.project,
            "MCP_DEV_PORT": str(self.mcp_port),
            "TELEGRAM_EMULATOR_PORT": str(self.emulator_port),
            "MISTRAL_MODEL_FILE": "tiny.gguf",
            "MISTRAL_CTX_SIZE": "512",
            "MISTRAL_THREADS": "1",
        }

    def make_env(self, **extra: str) -> dict[str, str]:
        """The environment for the copied Makefile: nothing it would set itself, so it takes its dev defaults."""
        env = {key: value for key, value in self.env.items() if key not in MAKE_EXPORTS}
        return {**env, "MCP_AUTH_TOKEN": MAKE_EXPORTS["MCP_AUTH_TOKEN"], **extra}

    def make(self, target: str, **extra: str) -> float:
        """Run a make target to the end; its seconds."""
        started = time.monotonic()
        result = subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=self.workdir,
            env=self.make_env(**extra),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"expected `make {target}` to succeed; exit {result.returncode}\n{result.stderr}")
        return time.monotonic() - started


def healthy_services(stack: Stack) -> set[str]:
    """The project's services Docker reports healthy: one `docker ps`, quick enough to poll with."""
    listed = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"label=com.docker.compose.project={stack.project}",
            "--format",
            '{{.Label "com.docker.compose.service"}} {{.Status}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[0] for line in listed.splitlines() if line.endswith("(healthy)")}


@dataclass(frozen=True)
class Start:
    """One `make dev` to all healthy: seconds in all, seconds before compose `up` attached (build and model
    check), and the containers compose recreated rather than started."""

    seconds: float
    before_up: float
    recreated: int


@contextmanager
def make_dev(stack: MakeDevStack, log: Path, **extra: str) -> Iterator[Start]:
    """`make dev` attached, its output in `log`; yields how it started once all services are healthy, then presses
    Ctrl+C."""
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            ["make", "--no-print-directory", "dev"],
            cwd=stack.workdir,
            env=stack.make_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        before_up = None
        deadline = started + 600
        while not set(SERVICES) <= healthy_services(stack):
            if before_up is None and "Attaching to" in log.read_text():
                before_up = time.monotonic() - started
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"expected every service healthy within 600 s; make dev said:\n{log.read_text()}")
            time.sleep(0.25)
        seconds = time.monotonic() - started
        yield Start(seconds, before_up or seconds, log.read_text().count(" Recreated"))
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@dataclass(frozen=True)
class Usage:
    """One container's CPU time so far and its memory now, as `docker stats` counts it (page cache left out)."""

    cpu_seconds: float
    memory: int

    @classmethod
    def read(cls, docker: httpx.Client, container_id: str) -> "Usage":
        stats = docker.get(f"/containers/{container_id}/stats", params={"stream": "false", "one-shot": "true"})
        body = stats.raise_for_status().json()
        memory = body["memory_stats"]
        # cgroup v1 names it total_inactive_file, v2 inactive_file.
        inactive = memory.get("stats", {}).get("total_inactive_file", memory.get("stats", {}).get("inactive_file", 0))
        return cls(body["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9, memory["usage"] - inactive)


@dataclass
class Idle:
    seconds: float
    # Per service: average CPU (percent of one core) and memory at the end (bytes).
    cpu_percent: dict[str, float]
    memory: dict[str, int]
    log_lines: int

    def summary(self) -> str:
        per_service = ", ".join(
            f"{service} {self.cpu_percent[service]:.1f}% / {self.memory[service] / 2**20:.0f} MiB"
            for service in self.cpu_percent
        )
        return (
            f"CPU {sum(self.cpu_percent.values()):.1f}% of one core, {sum(self.memory.values()) / 2**20:.0f} MiB "
            f"({per_service}); {self.log_lines} log line(s)"
        )


def wait_quiet(log: Path, timeout: float = 120) -> None:
    """Wait until the start-up is over: nothing printed for QUIET_SECONDS."""
    deadline, size, quiet_since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        if (now_size := log.stat().st_size) != size:
            size, quiet_since = now_size, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return
        time.sleep(0.25)


def measure_idle(stack: Stack, log: Path, seconds: float) -> Idle:
    ids = {service: stack.container_id(service) for service in SERVICES}
    with httpx.Client(transport=httpx.HTTPTransport(uds=DOCKER_SOCKET), base_url="http://docker", timeout=30) as docker:
        wait_quiet(log)
        lines_before = len(log.read_text().splitlines())
        started, before = time.monotonic(), {service: Usage.read(docker, cid) for service, cid in ids.items()}
        time.sleep(seconds)
        after = {service: Usage.read(docker, cid) for service, cid in ids.items()}
        elapsed = time.monotonic() - started
    return Idle(
        seconds=elapsed,
        cpu_percent={s: 100 * (after[s].cpu_seconds - before[s].cpu_seconds) / elapsed for s in SERVICES},
        memory={s: after[s].memory for s in SERVICES},
        log_lines=len(log.read_text().splitlines()) - lines_before,
    )


@dataclass
class DevStack:
    first_start: Start
    warm_start: Start
    idle: Idle
    idle_polling: Idle
    rebuild_nothing: float
    rebuild_code: float
    rebuild_dependencies: float
    image_mb: dict[str, float]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def time_rebuilds(stack: MakeDevStack) -> tuple[float, float, float]:
    """`make rebuild` under a throwaway tag: nothing changed, code changed, the dependency layer changed."""
    tag = f"bench-{secrets.token_hex(3)}"
    try:
        stack.make("rebuild", BUTLER_IMAGE_TAG=tag)  # the tag's first build: the cache names the same layers
        nothing = stack.make("rebuild", BUTLER_IMAGE_TAG=tag)
        # The tag in each change: a change the build cache has seen before would be no change.
        append(stack.workdir / "mcp_server/app.py", f"\n# bench {tag}: a code-only change\n")
        append(stack.workdir / "butler_bot/app.py", f"\n# bench {tag}: a code-only change\n")
        code = stack.make("rebuild", BUTLER_IMAGE_TAG=tag)
        append(stack.workdir / "pyproject.toml", f"\n# bench {tag}: the dependency layer's inputs changed\n")
        dependencies = stack.make("rebuild", BUTLER_IMAGE_TAG=tag)
    finally:
        images = [f"butler-agent/{image}:{tag}" for image in ("mcp-server", "butler-bot")]
        subprocess.run(["docker", "image", "rm", *images], capture_output=True, check=False)
    return nothing, code, dependencies


def image_sizes() -> dict[str, float]:
    sizes = {}
    for image in SERVICES:
        inspect = subprocess.run(
            ["docker", "image", "inspect", f"butler-agent/{image}:latest"], capture_output=True, text=True, check=True
        )
        sizes[image] = json.loads(inspect.stdout)[0]["Size"] / 1e6
    return sizes


def run(idle_seconds: float = 60) -> DevStack:
    with tempfile.TemporaryDirectory(prefix="butler-bench-dev-stack-") as tmp:
        stack = MakeDevStack(
            workdir=copy_worktree(Path(tmp) / "tree"),
            compose=COMPOSE_FLAVOURS["compose-v2"],
            files=[BASE_FILE, DEV_FILE],
        )
        stack.make("build")
        model = Path(tmp) / "tiny.gguf"
        write_tiny_gguf(model)
        log = Path(tmp) / "make-dev-warm.log"
        try:
            # The model is on its volume before the clock starts, as after the first `make model`.
            stack.run("create", "mistral")
            subprocess.run(
                ["docker", "cp", str(model), f"{stack.container_id('mistral')}:/models/tiny.gguf"], check=True
            )
            with make_dev(stack, Path(tmp) / "make-dev-first.log") as first_start:
                pass
            with make_dev(stack, log) as warm_start:
                idle = measure_idle(stack, log, idle_seconds)
            polling_log = Path(tmp) / "make-dev-polling.log"
            with make_dev(stack, polling_log, WATCHFILES_FORCE_POLLING="true"):
                for service in ("mcp-server", "butler-bot"):
                    env = stack.inspect(service)["Config"]["Env"]
                    assert "WATCHFILES_FORCE_POLLING=true" in env, f"expected {service} polling; its env: {env}"
                idle_polling = measure_idle(stack, polling_log, idle_seconds)
        finally:
            stack.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        nothing, code, dependencies = time_rebuilds(stack)
    return DevStack(first_start, warm_start, idle, idle_polling, nothing, code, dependencies, image_sizes())


def rows(result: DevStack) -> list[Row]:
    sizes = ", ".join(f"{image} {size:.0f} MB" for image, size in result.image_mb.items())
    warm, first = result.warm_start, result.first_start
    recreated = f"; {warm.recreated} container(s) recreated" if warm.recreated else ""
    return [
        Row(
            "dev stack",
            "`make dev` warm start to all healthy (images built, nothing changed, containers kept from a Ctrl+C)",
            f"{warm.seconds:.1f} s, of which {warm.before_up:.1f} s before `up` attached (build and model check)"
            f"{recreated}",
            "",
            f"first `make dev` (containers created, database migrated): {first.seconds:.1f} s; Docker checks health "
            f"every 5 s (mistral 10 s)",
        ),
        Row(
            "dev stack",
            f"idle `make dev` over {result.idle.seconds:.0f} s (file events; mistral with a tiny test model): CPU, "
            "memory, lines printed",
            result.idle.summary(),
            f"≤ {LOG_LINES_TARGET} line a minute",
            "",
            result.idle.log_lines <= LOG_LINES_TARGET * result.idle.seconds / 60,
        ),
        Row(
            "dev stack",
            f"idle `make dev` over {result.idle_polling.seconds:.0f} s, WATCHFILES_FORCE_POLLING=true",
            result.idle_polling.summary(),
            "",
            f"file events: CPU {sum(result.idle.cpu_percent.values()):.1f}%",
        ),
        Row(
            "dev stack",
            "`make rebuild` (mcp-server, butler-bot) after a code-only change",
            f"{result.rebuild_code:.1f} s",
            "",
            f"nothing changed: {result.rebuild_nothing:.1f} s",
        ),
        Row(
            "dev stack",
            "`make rebuild` after a dependency-layer change (pyproject.toml; uv's cache warm, nothing downloaded)",
            f"{result.rebuild_dependencies:.1f} s",
            "",
            f"code-only: {result.rebuild_code:.1f} s",
        ),
        Row("dev stack", "image sizes", sizes),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=60, help="seconds the idle stack is measured, each time")
    args = parser.parse_args()
    for row in rows(run(args.idle)):
        print(f"{row.figure}: {row.value} | {row.reference}")


if __name__ == "__main__":
    main()

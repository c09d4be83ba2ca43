"""Drives one copy of the compose stack in a real Docker engine, the way a developer would."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = "docker-compose.butler.yml"
DEV_FILE = "docker-compose.butler.dev.yml"
# The scripted LLM stand-in the bot talks to in these tests (the mistral service still runs, untouched).
E2E_FILE = "tests/e2e/compose.e2e.yml"
EMULATOR_TOKEN = "123456:e2e-emulator-token"
MCP_TOKEN = "e2e-" + secrets.token_hex(16)
# Telegram users the bot serves in the tests; anyone else is a stranger. The load test plays LOAD_USERS.
LOAD_USERS = tuple(range(5201, 5251))
ALLOWED_USERS = (4242, *range(5101, 5127), *LOAD_USERS)
COMPOSE_FLAVOURS = {"compose-v2": ["docker", "compose"], "compose-v1": ["docker-compose"]}
# A stack without the model: the two cores serve the bot, the MCP server and the emulator.
WITHOUT_MODEL = ("mcp-server", "butler-bot", "telegram-emulator", "llm-standin")
BOT_HEALTH = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8090/health', timeout=3).read().decode())"


def compose_available(command: list[str]) -> bool:
    return shutil.which(command[0]) is not None and (
        subprocess.run([*command, "version"], capture_output=True, check=False).returncode == 0
    )


def copy_worktree(destination: Path) -> Path:
    """Copy the files git knows about, so edits made by a test never touch the developer's tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; fail with what was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:  # the service may be restarting: keep polling
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"expected {what} within {timeout:.0f} s; last seen: {last!r}")


@dataclass
class Stack:
    """One compose project: a copy of the repo, its own project name, ports and volumes."""

    workdir: Path
    compose: list[str]
    files: list[str] = field(default_factory=lambda: [BASE_FILE, DEV_FILE, E2E_FILE])
    project: str = field(default_factory=lambda: "butlere2e" + secrets.token_hex(3))
    mcp_port: int = field(default_factory=free_port)
    emulator_port: int = field(default_factory=free_port)
    llm_standin_port: int = field(default_factory=free_port)
    mistral_at_start: tuple[str, str, int] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "DOCKER_BUILDKIT": "1",
            "COMPOSE_DOCKER_CLI_BUILD": "1",
            "MCP_AUTH_TOKEN": MCP_TOKEN,
            "TELEGRAM_BOT_TOKEN": EMULATOR_TOKEN,
            "TELEGRAM_API_URL": "http://telegram-emulator:8081",
            "MISTRAL_MODEL_FILE": "tiny.gguf",
            "MISTRAL_CTX_SIZE": "512",
            "MISTRAL_THREADS": "1",
            "MCP_DEV_PORT": str(self.mcp_port),
            "TELEGRAM_EMULATOR_PORT": str(self.emulator_port),
            "LLM_STANDIN_PORT": str(self.llm_standin_port),
            "LLM_BASE_URL": "http://llm-standin:8080/v1",
            "LLM_TIMEOUT": "5",
            # The scripted long answers exceed the default bound on purpose.
            "LLM_MAX_TOKENS": "2100",
            "ALLOWED_USER_IDS": ",".join(map(str, ALLOWED_USERS)),
        }

    def argv(self, *args: str, files: list[str] | None = None) -> list[str]:
        """The compose command line for this project: its files and the emulator profile."""
        file_args = [arg for name in files or self.files for arg in ("-f", name)]
        return [*self.compose, *file_args, "--profile", "emulator", *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, files: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = self.argv(*args, files=files)
        result = subprocess.run(
            command, cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"expected `{' '.join(command)}` to succeed; exit {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def container_id(self, service: str) -> str:
        return self.run("ps", "-a", "-q", service).stdout.strip()

    def inspect(self, service: str) -> dict[str, Any]:
        out = subprocess.run(
            ["docker", "inspect", self.container_id(service)], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out)[0]

    def restart_marker(self, service: str) -> tuple[str, str, int]:
        """What changes when Docker restarts or recreates a container: its id, start time and restart count."""
        state = self.inspect(service)
        return state["Id"], state["State"]["StartedAt"], state["RestartCount"]

    def health(self, service: str) -> str:
        return self.inspect(service)["State"].get("Health", {}).get("Status", "none")

    def exec(self, service: str, *command: str) -> str:
        return self.run("exec", "-T", service, *command).stdout

    def docker_exec(self, service: str, *command: str) -> str:
        """Run a command in the service's container straight through Docker: fast enough to poll with."""
        result = subprocess.run(
            ["docker", "exec", self.container_id(service), *command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"expected {command} in {service} to succeed; saw:\n{result.stderr}")
        return result.stdout

    def peak_memory(self, service: str) -> int:
        """The most memory the service's container has used since it started, in bytes (cgroup v2, else v1)."""
        # v1 counts the page cache too, so it reads higher than v2 for the same work.
        read_peak = "cat /sys/fs/cgroup/memory.peak 2>/dev/null || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes"
        return int(self.docker_exec(service, "sh", "-c", read_peak))

    def logs(self, service: str) -> str:
        result = self.run("logs", "--no-color", service, check=False)
        return result.stdout + result.stderr

    def wait_healthy(self, *services: str, timeout: float = 180) -> None:
        for service in services:
            wait_until(lambda s=service: self.health(s) == "healthy", timeout, f"{service} to be healthy")

    def mcp_health(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.mcp_port}/health", timeout=3).json()

    def edit(self, relative: str, transform: Callable[[str], str]) -> None:
        """Save a file the way an editor does: write a temp file and rename it over the original."""
        path = self.workdir / relative
        new_text = transform(path.read_text())
        temporary = path.with_name(f".{path.name}.swp")
        temporary.write_text(new_text)
        os.replace(temporary, path)

    def network(self, name: str) -> str:
        """The Docker name of one of the project's networks (backend, egress)."""
        return f"{self.project}_{name}"

    def bot_pid(self) -> int:
        """The pid of the bot process once its /health is green; raises while it starts, stops or fails."""
        return json.loads(self.docker_exec("butler-bot", "python", "-c", BOT_HEALTH))["pid"]


@contextmanager
def stack_of_its_own(directory: Path, kind: type[Stack] = Stack) -> Iterator[Stack]:
    """A Compose v2 dev stack from a copy of the repo in `directory`, WITHOUT_MODEL, removed with its volumes after."""
    command = COMPOSE_FLAVOURS["compose-v2"]
    assert compose_available(command), f"expected `{' '.join(command)}` to be installed (see .ci/run)"
    running = kind(workdir=copy_worktree(directory), compose=command)
    try:
        running.run("up", "-d", "--build", *WITHOUT_MODEL, timeout=1800)
        running.wait_healthy(*WITHOUT_MODEL)
        yield running
    finally:
        running.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

"""Tool-call latency and throughput of the butler's MCP server over Streamable HTTP on loopback.

Run it from the repository root:  .venv/bin/python -m bench.mcp_tools  [--seconds 5] [--clients 1 8 32]

It starts two servers with uvicorn in their own processes: the butler (SQLite in a temporary directory,
1,000 tasks stored for the benchmark user) and a reference server built with the same SDK whose one tool
echoes its input. Each client is an SDK `Client` with its own connection calling one tool in a loop:
`tasks_list` (default filter and limit) on the butler, `echo` on the reference. Prints p50/p99 latency,
calls/s and the CPU time per call of the server and of the clients, per concurrency level.

Throughput has no target: the clients (one process, parsing and schema-checking each result) share the machine's
cores with the server, so calls/s measures both; the server's CPU per call is its own share. A personal butler
makes a few tool calls per message.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.table import Row, markdown_table
from mcp_server.db import Database
from mcp_server.models import Task

TOKEN = "bench-token-0123456789abcdef"
USER_ID = 1000
STORED_TASKS = 1000
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    tool: str
    arguments: dict[str, object]
    server_pid: int


@dataclass(frozen=True)
class Result:
    clients: int
    calls: int
    seconds: float
    latencies: list[float]
    # CPU seconds over the measured window: the server process's, and this process's (the clients').
    server_cpu: float
    client_cpu: float

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    def cpu_per_call(self) -> str:
        return (
            f"CPU per call: server {1000 * self.server_cpu / self.calls:.1f} ms, "
            f"clients {1000 * self.client_cpu / self.calls:.1f} ms"
        )

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (proc(5): fields 14 and 15 of /proc/PID/stat, in ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def uvicorn_process(app: str, port: int, env: dict[str, str]) -> Iterator[int]:
    """The server's pid, once it answers."""
    command = [sys.executable, "-m", "uvicorn", app, "--host=127.0.0.1", f"--port={port}"]
    command += ["--log-level=warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # Any HTTP answer means the server is up (the reference has no /health).
                httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


async def seed_tasks(database_url: str) -> None:
    db = Database(database_url)
    due = datetime.now(UTC) + timedelta(days=1)
    async with db.session() as session:
        session.add_all(
            Task(user_id=USER_ID, title=f"Task {n}", search_text=f"task {n}\n", due_at=due + timedelta(minutes=n))
            for n in range(STORED_TASKS)
        )
    await db.close()


@asynccontextmanager
async def connect(target: Target) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=target.headers, timeout=30) as http,
        Client(streamable_http_client(target.url, http_client=http)) as client,
    ):
        yield client


async def measure(target: Target, clients: int, seconds: float) -> Result:
    latencies: list[float] = []
    ready = asyncio.Barrier(clients + 1)
    start = asyncio.Event()
    stop_at = 0.0

    async def run_client() -> None:
        async with connect(target) as client:
            # Warm up the connection and the server's caches before the clock starts.
            for _ in range(3):
                await client.call_tool(target.tool, target.arguments)
            await ready.wait()
            await start.wait()
            while (began := time.perf_counter()) < stop_at:
                result = await client.call_tool(target.tool, target.arguments)
                if result.is_error:
                    raise RuntimeError(f"{target.tool} failed: {result.content}")
                latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(run_client()) for _ in range(clients)]
    await ready.wait()
    began, server_began, client_began = time.perf_counter(), cpu_seconds(target.server_pid), time.process_time()
    stop_at = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    return Result(
        clients,
        len(latencies),
        time.perf_counter() - began,
        latencies,
        cpu_seconds(target.server_pid) - server_began,
        time.process_time() - client_began,
    )


def report(name: str, results: list[Result]) -> None:
    print(f"\n{name}")
    print(f"  {'clients':>7} {'calls':>7} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for r in results:
        print(
            f"  {r.clients:>7} {r.calls:>7} {r.calls_per_second:>8.0f} {r.percentile_ms(0.5):>7.2f} "
            f"{r.percentile_ms(0.99):>7.2f}  {r.cpu_per_call()}"
        )


async def benchmark(targets: list[Target], levels: list[int], seconds: float) -> dict[str, list[Result]]:
    return {target.name: [await measure(target, clients, seconds) for clients in levels] for target in targets}


P50_TARGET_MS = 10.0


def run(seconds: float = 5.0, levels: tuple[int, ...] = (1, 8, 32)) -> dict[str, list[Result]]:
    """The butler's tasks_list and the reference echo, at each concurrency level (butler first)."""
    with tempfile.TemporaryDirectory(prefix="butler-bench-") as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/butler.db"
        butler_port, reference_port = free_port(), free_port()
        env = {"DATABASE_URL": database_url, "MCP_AUTH_TOKEN": TOKEN, "BUTLER_ENV": "development"}
        with (
            uvicorn_process("mcp_server.app:app", butler_port, env | {"LOG_LEVEL": "WARNING"}) as butler_pid,
            uvicorn_process("bench.reference_server:app", reference_port, {}) as reference_pid,
        ):
            asyncio.run(seed_tasks(database_url))
            butler = Target(
                "butler: tasks_list (1,000 tasks stored, default limit)",
                f"http://127.0.0.1:{butler_port}/mcp",
                {"Authorization": f"Bearer {TOKEN}", "X-Telegram-User-Id": str(USER_ID)},
                "tasks_list",
                {},
                butler_pid,
            )
            reference = Target(
                "reference: echo (same SDK, no database)",
                f"http://127.0.0.1:{reference_port}/mcp",
                {},
                "echo",
                {"text": "hello"},
                reference_pid,
            )
            return asyncio.run(benchmark([butler, reference], list(levels), seconds))


def rows(results: dict[str, list[Result]]) -> list[Row]:
    """The butler's tool at each concurrency level, beside the reference server's echo."""
    ours, theirs = results.values()
    targets = {1: (f"p50 ≤ {P50_TARGET_MS:g} ms", lambda r: r.percentile_ms(0.5) <= P50_TARGET_MS)}
    table = []
    for butler, echo in zip(ours, theirs, strict=True):
        target, meets = targets.get(butler.clients, ("", None))
        table.append(
            Row(
                "MCP tools",
                f"tasks_list (1,000 tasks stored), {butler.clients} client(s): p50 / p99, calls/s",
                f"{butler.percentile_ms(0.5):.1f} / {butler.percentile_ms(0.99):.1f} ms, "
                f"{butler.calls_per_second:,.0f}/s; {butler.cpu_per_call()}",
                target,
                f"same-SDK echo: {echo.percentile_ms(0.5):.1f} / {echo.percentile_ms(0.99):.1f} ms, "
                f"{echo.calls_per_second:,.0f}/s; {echo.cpu_per_call()}",
                None if meets is None else meets(butler),
            )
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels")
    args = parser.parse_args()
    results = run(args.seconds, tuple(args.clients))
    for name, measured in results.items():
        report(name, measured)
    print()
    print(markdown_table(rows(results)))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average after the run: {load})")


if __name__ == "__main__":
    main()

"""The Telegram Bot API emulator image (telegram_emulator/) run alone in Docker, and an aiogram Bot pointed at it."""

import functools
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("TELEGRAM_EMULATOR_IMAGE", "butler-agent/telegram-emulator:latest")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@functools.cache
def ensure_image() -> None:
    """Build the image once per run, so it is never older than server.js (cached layers make it seconds)."""
    build_args = ["--build-arg", f"PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}"] if os.environ.get("PYTHON_IMAGE") else []
    built = subprocess.run(
        ["docker", "build", *build_args, "-t", IMAGE, str(REPO_ROOT / "telegram_emulator")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    assert built.returncode == 0, f"expected `docker build` of {IMAGE} to succeed, got:\n{built.stderr[-3000:]}"


@contextmanager
def running_emulator() -> Iterator[str]:
    """Base URL of a fresh emulator container published on an ephemeral loopback port, removed afterwards."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("expected a running Docker engine (see .ci/run)")
    ensure_image()
    container = docker("run", "-d", "--label", "butler-agent.test=telegram-emulator", "-p", "127.0.0.1::8081", IMAGE)
    container_id = container.stdout.strip()
    try:
        host_port = docker("port", container_id, "8081/tcp").stdout.split()[0]  # e.g. 127.0.0.1:32768
        url = f"http://{host_port}"
        deadline = time.monotonic() + 30
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{url}/health", timeout=2)
                if last.status_code == 200:
                    break
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        else:
            logs = docker("logs", container_id, check=False)
            pytest.fail(
                f"expected GET {url}/health to answer 200 within 30 s, last saw {last!r}; "
                f"container logs:\n{logs.stdout}{logs.stderr}"
            )
        yield url
    finally:
        docker("rm", "-f", container_id, check=False)


def new_token() -> str:
    """A fresh, well-formed bot token per test, so tests share no messages."""
    return f"{secrets.randbelow(10**9) + 10**6}:{secrets.token_urlsafe(24)}"


def make_bot(url: str, token: str) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))


async def client_post(url: str, path: str, payload: dict[str, Any]) -> Any:
    """Call a client-side (user-side) route and return its `result`."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post(path, json=payload)
    body = response.json()
    assert response.status_code == 200 and body.get("ok") is True, (
        f"expected POST {path} to answer 200 with ok=true, got {response.status_code} {body!r}"
    )
    return body["result"]

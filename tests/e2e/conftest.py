"""Fixtures that start real things: the compose stack in Docker, under Compose v2 and v1."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.real_model import run_llama_server, smollm2_gguf
from tests.e2e.stack import COMPOSE_FLAVOURS, Stack, compose_available, copy_worktree
from tests.e2e.tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="session", params=list(COMPOSE_FLAVOURS))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The dev stack (base + overlay, emulator profile) from a copy of the repo, with a tiny model loaded."""
    command = COMPOSE_FLAVOURS[request.param]
    assert compose_available(command), f"expected `{' '.join(command)}` to be installed (see .ci/run)"
    workdir = copy_worktree(tmp_path_factory.mktemp(request.param))
    running = Stack(workdir=workdir, compose=command)
    running.run("build", timeout=1800)
    try:
        running.run("up", "-d")
        model = Path(tmp_path_factory.mktemp("model")) / "tiny.gguf"
        write_tiny_gguf(model)
        subprocess.run(["docker", "cp", str(model), f"{running.container_id('mistral')}:/models/tiny.gguf"], check=True)
        running.wait_healthy("mcp-server", "telegram-emulator", "butler-bot", "mistral", "llm-standin")
        running.mistral_at_start = running.restart_marker("mistral")
        yield running
    finally:
        running.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


@pytest.fixture(scope="session")
def smollm2(request: pytest.FixtureRequest) -> Path:
    """SmolLM2-135M-Instruct's GGUF, kept in pytest's cache directory between runs."""
    return smollm2_gguf(request.config.cache.mkdir("smollm2"))


@pytest.fixture(scope="session")
def real_llm(smollm2: Path) -> Iterator[str]:
    """The base URL of the project's mistral image serving SmolLM2 with the image's default (shipped) template."""
    with run_llama_server(smollm2) as base_url:
        yield base_url


@pytest.fixture
def llm(stack: Stack) -> Iterator[LlmStandIn]:
    """The stack's scripted LLM stand-in, with no script left from before or after the test."""
    standin = LlmStandIn(f"http://127.0.0.1:{stack.llm_standin_port}")
    standin.reset()
    yield standin
    standin.reset()

"""The production containers as Docker runs them: non-root, no capabilities, no new privileges, read-only, bounded."""

import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, Stack, compose_available, copy_worktree
from tests.e2e.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e

SERVICES = ("mcp-server", "butler-bot", "mistral")


@pytest.fixture(scope="module", params=list(COMPOSE_FLAVOURS))
def production(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The production file alone, with a tiny model, so mistral serves from its read-only container."""
    command = COMPOSE_FLAVOURS[request.param]
    assert compose_available(command), f"expected `{' '.join(command)}` to be installed (see .ci/run)"
    workdir = copy_worktree(tmp_path_factory.mktemp(f"hardened-{request.param}"))
    running = Stack(workdir=workdir, compose=command, files=[BASE_FILE])
    try:
        running.run("up", "-d", timeout=1800)
        model = tmp_path_factory.mktemp("model") / "tiny.gguf"
        write_tiny_gguf(model)
        subprocess.run(["docker", "cp", str(model), f"{running.container_id('mistral')}:/models/tiny.gguf"], check=True)
        running.wait_healthy("mcp-server", "mistral")
        yield running
    finally:
        running.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def process_status(stack: Stack, service: str) -> dict[str, str]:
    """The kernel's view of the container's main process (PID 1)."""
    lines = stack.docker_exec(service, "cat", "/proc/1/status").splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_non_root_without_capabilities_or_new_privileges(production: Stack, service: str) -> None:
    status = process_status(production, service)
    uid = status["Uid"].split()[0]
    assert uid != "0", f"expected {service} to run as a non-root uid; saw {uid}"
    assert int(status["CapEff"], 16) == 0, f"expected {service} to hold no capability; saw CapEff {status['CapEff']}"
    assert int(status["CapBnd"], 16) == 0, f"expected {service} unable to gain one; saw CapBnd {status['CapBnd']}"
    assert status["NoNewPrivs"] == "1", f"expected no-new-privileges on {service}; saw {status['NoNewPrivs']}"


@pytest.mark.parametrize("service", SERVICES)
def test_root_filesystem_is_read_only_and_tmp_is_scratch(production: Stack, service: str) -> None:
    denied = subprocess.run(
        ["docker", "exec", production.container_id(service), "touch", "/probe"], capture_output=True, text=True
    )
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, (
        f"expected a read-only root filesystem in {service}; saw exit {denied.returncode}: {denied.stderr}"
    )
    production.docker_exec(service, "touch", "/tmp/probe")


@pytest.mark.parametrize("service", SERVICES)
def test_memory_and_processes_are_bounded(production: Stack, service: str) -> None:
    host = production.inspect(service)["HostConfig"]
    assert host["Memory"] > 0, f"expected a memory limit on {service}; saw {host['Memory']}"
    assert (host["PidsLimit"] or 0) > 0, f"expected a process limit on {service}; saw {host['PidsLimit']}"
    assert not any(host["PortBindings"].values()), f"expected {service} to publish nothing; saw {host['PortBindings']}"

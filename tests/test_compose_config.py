"""The compose files as Compose itself renders them: production stays lean, the overlay only adds hot reload."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from butler_bot.settings import BotSettings
from tests.e2e.stack import BASE_FILE, COMPOSE_FLAVOURS, DEV_FILE, REPO_ROOT, compose_available, copy_worktree

REQUIRED_ENV = {"MCP_AUTH_TOKEN": "config-test-token", "TELEGRAM_BOT_TOKEN": "123:config-test"}
BOT_COMMAND = ["watchfiles", "--filter", "python", "python -m butler_bot", "/app/src", "/app/shared"]


@pytest.fixture(params=list(COMPOSE_FLAVOURS))
def compose(request: pytest.FixtureRequest) -> list[str]:
    command = COMPOSE_FLAVOURS[request.param]
    assert compose_available(command), f"expected `{' '.join(command)}` to be installed (see .ci/run)"
    return command


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without the stack's variables, so only what a test sets counts."""
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV and k != "COMPOSE_PROFILES"}
    return {**env, **extra}


def render(compose: list[str], *files: str, cwd: Path = REPO_ROOT) -> dict[str, Any]:
    args = [arg for name in files for arg in ("-f", name)]
    result = subprocess.run(
        [*compose, *args, "--profile", "emulator", "config"],
        cwd=cwd,
        env=clean_env(**REQUIRED_ENV),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"expected `config` to render {files}; got:\n{result.stderr}"
    rendered = yaml.safe_load(result.stdout)
    # Compose v1 renders services of every profile; keep those that `up` would start, as v2 does.
    rendered["services"] = {
        name: service
        for name, service in rendered["services"].items()
        if not service.get("profiles") or "emulator" in service["profiles"]
    }
    return rendered


def as_list(command: Any) -> list[str]:
    return command.split() if isinstance(command, str) else list(command or [])


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths a service bind-mounts; Compose v1 renders volumes in short syntax, v2 in long."""
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
            if source.startswith(("/", ".")):
                sources.append(source)
        elif volume["type"] == "bind":
            sources.append(volume["source"])
    return sources


def host_ips(service: dict[str, Any]) -> list[str]:
    """The host address of each published port (short syntax in v1, long in v2); "" means all interfaces."""
    ips = []
    for port in service.get("ports", []):
        if isinstance(port, str):
            parts = port.split(":")
            ips.append(parts[0] if len(parts) == 3 else "")
        else:
            ips.append(port.get("host_ip", ""))
    return ips


def comparable(service: dict[str, Any]) -> dict[str, Any]:
    """v1 renders an empty network entry as null or {} depending on the file count: compare names only."""
    return {**service, "networks": sorted(service.get("networks", []))}


def test_overlay_has_no_mistral_block() -> None:
    overlay = yaml.safe_load((REPO_ROOT / DEV_FILE).read_text())
    assert "mistral" not in overlay["services"], "expected mistral to run its production image, untouched"


def test_mistral_renders_the_same_with_and_without_the_overlay(compose: list[str]) -> None:
    production = render(compose, BASE_FILE)["services"]["mistral"]
    development = render(compose, BASE_FILE, DEV_FILE)["services"]["mistral"]
    assert comparable(development) == comparable(production)


def test_bot_command_is_exactly_the_watchfiles_one(compose: list[str]) -> None:
    bot = render(compose, BASE_FILE, DEV_FILE)["services"]["butler-bot"]
    assert as_list(bot["command"]) == BOT_COMMAND


def test_mcp_command_reloads_source_shared_and_config(compose: list[str]) -> None:
    command = as_list(render(compose, BASE_FILE, DEV_FILE)["services"]["mcp-server"]["command"])
    assert command[:2] == ["uvicorn", "mcp_server.app:app"], command
    assert "--reload" in command
    reload_dirs = {arg.split("=", 1)[1] for arg in command if arg.startswith("--reload-dir=")}
    assert reload_dirs == {"/app/src", "/app/shared", "/app/config"}, command
    assert {"--reload-include=*.yaml", "--reload-include=*.yml"} <= set(command), command
    assert any(arg.startswith("--timeout-graceful-shutdown=") for arg in command), command


def test_dev_mounts_are_directories_and_ports_are_loopback_only(compose: list[str]) -> None:
    services = render(compose, BASE_FILE, DEV_FILE)["services"]
    for name in ("mcp-server", "butler-bot"):
        sources = bind_sources(services[name])
        assert sources, f"expected source bind mounts in dev {name}"
        for source in sources:
            assert Path(source).is_dir(), f"expected a directory bind mount in {name}, saw {source}"
    published = {name: host_ips(service) for name, service in services.items() if service.get("ports")}
    assert published, "expected the dev overlay to publish the MCP endpoint and the emulator"
    for name, ips in published.items():
        assert set(ips) == {"127.0.0.1"}, f"expected {name} to publish on 127.0.0.1 only; saw {ips}"


def test_production_has_no_bind_mounts_reloaders_or_host_ports(compose: list[str]) -> None:
    services = render(compose, BASE_FILE)["services"]
    assert set(services) == {"mcp-server", "butler-bot", "mistral"}
    for name, service in services.items():
        assert not service.get("ports"), f"expected {name} to publish nothing; saw {service.get('ports')}"
        assert not bind_sources(service), f"expected no bind mounts in production {name}; saw {bind_sources(service)}"
        command = " ".join(as_list(service.get("command")))
        assert "--reload" not in command and "watchfiles" not in command, f"{name} reloads in production: {command}"
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"expected a healthcheck on {name}"


def megabytes(limit: str | int) -> float:
    """A memory limit as v1 ("512m") or v2 (bytes) renders it."""
    text = str(limit).lower()
    scale = {"k": 2**10, "m": 2**20, "g": 2**30}.get(text[-1:], 1)
    return float(text.rstrip("kmgb") or 0) * scale / 2**20


@pytest.mark.parametrize("files", [[BASE_FILE], [BASE_FILE, DEV_FILE]], ids=["production", "dev"])
def test_every_service_is_locked_down_and_bounded(compose: list[str], files: list[str]) -> None:
    services = render(compose, *files)["services"]
    for name in ("mcp-server", "butler-bot", "mistral"):
        service = services[name]
        assert "no-new-privileges:true" in service.get("security_opt", []), f"expected no-new-privileges on {name}"
        assert service.get("cap_drop") == ["ALL"], (
            f"expected {name} to drop every capability; saw {service.get('cap_drop')}"
        )
        assert service.get("read_only") is True, f"expected a read-only root filesystem on {name}"
        assert "/tmp" in service.get("tmpfs", []), f"expected a tmpfs /tmp on {name}; saw {service.get('tmpfs')}"
        assert megabytes(service.get("mem_limit", 0)) >= 128, (
            f"expected a memory limit on {name}; saw {service.get('mem_limit')}"
        )
        assert service.get("pids_limit", 0) > 0, f"expected a process limit on {name}; saw {service.get('pids_limit')}"


def test_backend_network_is_internal_and_only_the_bot_leaves_it(compose: list[str]) -> None:
    rendered = render(compose, BASE_FILE)
    backend = next(net for key, net in rendered["networks"].items() if key == "backend")
    assert backend.get("internal") is True
    for name, service in rendered["services"].items():
        networks = set(service["networks"])
        expected = {"backend", "egress"} if name == "butler-bot" else {"backend"}
        assert networks == expected, f"expected {name} on {expected}; saw {networks}"


def test_missing_secret_stops_with_a_sentence_naming_it(compose: list[str]) -> None:
    result = subprocess.run(
        [*compose, "-f", BASE_FILE, "config", "-q"],
        cwd=REPO_ROOT,
        env=clean_env(TELEGRAM_BOT_TOKEN="123:x"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0, "expected compose to refuse a missing MCP_AUTH_TOKEN"
    assert "MCP_AUTH_TOKEN" in result.stderr and "openssl rand" in result.stderr, result.stderr


@pytest.mark.parametrize("broken_file", [BASE_FILE, DEV_FILE])
def test_config_check_fails_on_an_invalid_file(compose: list[str], broken_file: str, tmp_path: Path) -> None:
    workdir = copy_worktree(tmp_path)
    assert shutil.which("make"), "expected make on PATH"
    ok = subprocess.run(
        ["make", "config-check", f"COMPOSE={' '.join(compose)}"], cwd=workdir, env=clean_env(), capture_output=True
    )
    assert ok.returncode == 0, f"expected the pristine files to pass:\n{ok.stderr.decode()}"
    path = workdir / broken_file
    path.write_text(path.read_text().replace("  mcp-server:\n", "  mcp-server:\n    restart_policy_typo: always\n", 1))
    broken = subprocess.run(
        ["make", "config-check", f"COMPOSE={' '.join(compose)}"],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert broken.returncode != 0, f"expected make config-check to fail when {broken_file} is invalid"
    assert "restart_policy_typo" in broken.stderr, (
        f"expected compose's own message naming the bad key; saw:\n{broken.stderr}"
    )


def test_whatever_stops_the_bot_waits_longer_than_the_bot_waits_for_its_answers(
    compose: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker (production) and watchfiles (dev, 5 s from SIGINT to SIGKILL) must not kill the bot mid-answer."""
    production = render(compose, BASE_FILE)["services"]["butler-bot"]
    stop_grace = str(production.get("stop_grace_period"))
    monkeypatch.delenv("SHUTDOWN_GRACE_SECONDS", raising=False)
    # The grace as the production bot loads it: config/butler_bot.yaml over the field's default.
    grace = BotSettings(
        telegram_bot_token=REQUIRED_ENV["TELEGRAM_BOT_TOKEN"], mcp_auth_token=REQUIRED_ENV["MCP_AUTH_TOKEN"]
    ).shutdown_grace_seconds
    assert stop_grace.endswith("s") and float(stop_grace[:-1]) > grace, (
        f"expected the bot's stop_grace_period above its {grace} s grace; saw {stop_grace}"
    )
    dev = render(compose, BASE_FILE, DEV_FILE)["services"]["butler-bot"]
    dev_grace = float(dev["environment"]["SHUTDOWN_GRACE_SECONDS"])
    assert dev_grace < 5, f"expected the dev grace inside watchfiles' 5 s to SIGKILL; saw {dev_grace} s"

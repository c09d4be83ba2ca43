"""The Makefile as a developer meets it: help by default, the emulator only without a bot token, no secret printed."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import BASE_FILE, DEV_FILE, copy_worktree

TARGETS = {
    "dev",
    "dev-mcp",
    "dev-bot",
    "up",
    "down",
    "logs",
    "ps",
    "pair",
    "build",
    "rebuild",
    "config-check",
    "model",
    "test",
}
SECRETS = {"MCP_AUTH_TOKEN": "s3cret-mcp", "TELEGRAM_BOT_TOKEN": "42:s3cret-bot", "LLM_API_KEY": "s3cret-llm-key"}
WATCHED = ["MCP_AUTH_TOKEN", "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "ALLOWED_USER_IDS"]
# Stands in for `docker compose` to record what make hands it: the arguments and the stack's variables.
RECORDER = f"""#!/usr/bin/env python3
import json, os, sys
with open(os.environ["COMPOSE_CALLS"], "a") as log:
    log.write(json.dumps({{"args": sys.argv[1:], "env": {{k: os.environ.get(k) for k in {WATCHED!r}}}}}) + "\\n")
sys.exit(1 if os.environ.get("COMPOSE_FAILS_ON", "-") in sys.argv else 0)
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository without the developer's .env."""
    return copy_worktree(tmp_path / "repo")


def clean_env(**extra: str) -> dict[str, str]:
    stack_variables = ("TELEGRAM_", "MCP_", "ALLOWED_", "LLM_", "COMPOSE")
    base = {k: v for k, v in os.environ.items() if not k.startswith(stack_variables)}
    return {**base, **extra}


def make(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=tree, env=clean_env(**env), capture_output=True, text=True
    )
    assert result.returncode == 0, f"expected make {' '.join(args)} to succeed; saw:\n{result.stdout}{result.stderr}"
    return result


def recorded_make(tree: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run make with the recorder as compose; return make's output and every compose call it made."""
    recorder = tree.parent / "compose"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    calls = tree.parent / "calls.jsonl"
    calls.unlink(missing_ok=True)
    result = make(tree, f"COMPOSE={recorder}", *args, COMPOSE_CALLS=str(calls), **env)
    return result, [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def the_call(calls: list[dict[str, Any]], verb: str) -> dict[str, Any]:
    matching = [call for call in calls if verb in call["args"]]
    assert len(matching) == 1, f"expected one `{verb}` call to compose; saw {[c['args'] for c in calls]}"
    return matching[0]


def test_help_is_the_default_and_lists_every_target(tree: Path) -> None:
    listed = {line.split()[1] for line in make(tree).stdout.splitlines() if line.strip().startswith("make ")}
    assert listed >= TARGETS, f"expected every target in `make`; missing {TARGETS - listed}"


def test_dev_without_a_token_runs_the_emulator(tree: Path) -> None:
    _, calls = recorded_make(tree, "dev")
    up = the_call(calls, "up")
    assert "--profile" in up["args"] and "emulator" in up["args"], up
    assert up["env"]["TELEGRAM_API_URL"] == "http://telegram-emulator:8081", up
    assert up["env"]["ALLOWED_USER_IDS"] == "1", f"expected the emulator's user to be the owner: {up}"
    assert up["env"]["MCP_AUTH_TOKEN"], f"expected a stand-in MCP token for the dev stack: {up}"


def test_dev_with_a_token_talks_to_telegram_and_starts_no_emulator(tree: Path) -> None:
    _, calls = recorded_make(tree, "dev", TELEGRAM_BOT_TOKEN="42:real-token")
    up = the_call(calls, "up")
    assert "emulator" not in up["args"] and "telegram-emulator" not in up["args"], up
    assert up["env"]["TELEGRAM_BOT_TOKEN"] == "42:real-token", up


def test_make_never_prints_a_secret_from_env_file(tree: Path) -> None:
    (tree / ".env").write_text("".join(f"{name}={value}\n" for name, value in SECRETS.items()))
    targets = ["dev", "up", "down", "logs", "ps", "pair", "build", "rebuild", "config-check", "model"]
    for target in targets:
        result, calls = recorded_make(tree, target)
        printed = result.stdout + result.stderr
        leaked = [name for name, value in SECRETS.items() if value in printed]
        assert not leaked, f"expected make {target} to print no secret; saw {leaked} in:\n{printed}"
        assert calls, f"expected make {target} to call compose"
    dry_run = make(tree, "-n", *targets).stdout
    leaked = [name for name, value in SECRETS.items() if value in dry_run]
    assert not leaked, f"expected no secret in the commands make echoes; saw {leaked} in:\n{dry_run}"


@pytest.mark.parametrize("url", ["http://vllm:8000/v1", "https://api.mistral.ai/v1"])
@pytest.mark.parametrize("target", ["up", "dev"])
def test_a_model_elsewhere_means_no_download_and_no_mistral(tree: Path, target: str, url: str) -> None:
    (tree / ".env").write_text(f"MCP_AUTH_TOKEN=x\nTELEGRAM_BOT_TOKEN=1:x\nLLM_BASE_URL={url}\n")
    _, calls = recorded_make(tree, target)
    touched = [call["args"] for call in calls if {"mistral", "model-download"} & set(call["args"])]
    assert not touched, f"expected no model download and no mistral with LLM_BASE_URL={url}; saw {touched}"
    up = the_call(calls, "up")
    assert {"mcp-server", "butler-bot"} <= set(up["args"]), f"expected up to name the services but mistral: {up}"


@pytest.mark.parametrize("target", ["up", "dev"])
def test_the_local_model_is_fetched_and_every_service_started(tree: Path, target: str) -> None:
    (tree / ".env").write_text("MCP_AUTH_TOKEN=x\nTELEGRAM_BOT_TOKEN=1:x\nLLM_BASE_URL=http://mistral:8080/v1\n")
    _, calls = recorded_make(tree, target)
    the_call(calls, "model-download")
    up = the_call(calls, "up")
    assert up["args"][-1] in {"up", "--build"}, f"expected up to start every service; saw {up}"


def test_up_offline_warns_and_starts_the_stack(tree: Path) -> None:
    (tree / ".env").write_text("MCP_AUTH_TOKEN=x\nTELEGRAM_BOT_TOKEN=1:x\n")
    result, calls = recorded_make(tree, "up", COMPOSE_FAILS_ON="model-download")
    assert "Model download failed" in result.stdout, f"expected a warning; saw:\n{result.stdout}"
    the_call(calls, "up")


@pytest.mark.parametrize(("files", "dev"), [([BASE_FILE], False), ([BASE_FILE, DEV_FILE], True)])
def test_ps_logs_down_act_on_the_running_stack_as_started(tree: Path, files: list[str], dev: bool) -> None:
    """A real container of the stack, created with the production files or the dev pair, decides the files."""
    env = {"COMPOSE_PROJECT_NAME": f"butlermake{os.getpid()}{int(dev)}", "MCP_AUTH_TOKEN": "make-test-token"}
    file_args = [arg for name in files for arg in ("-f", name)]
    compose = ["docker", "compose", *file_args]
    create = [*compose, "up", "--no-start", "--no-build", "--no-deps", "mcp-server"]
    subprocess.run(create, cwd=tree, env=clean_env(TELEGRAM_BOT_TOKEN="1:x", **env), check=True, capture_output=True)
    try:
        for target in ("ps", "logs", "pair", "down"):
            command = make(tree, "-n", target, **env).stdout
            assert (DEV_FILE in command) is dev, f"expected make {target} to use {files}; saw {command}"
        make(tree, "down", **env)
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={env['COMPOSE_PROJECT_NAME']}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert not left.strip(), f"expected make down to remove the stack's containers; left {left}"
    finally:
        subprocess.run([*compose, "down"], cwd=tree, env=clean_env(TELEGRAM_BOT_TOKEN="1:x", **env), check=False)


def test_pair_reads_the_code_in_the_running_bot_container(tree: Path) -> None:
    _, calls = recorded_make(tree, "pair")
    exec_call = the_call(calls, "exec")
    command = exec_call["args"][exec_call["args"].index("exec") :]
    assert command == ["exec", "-T", "butler-bot", "python", "-m", "butler_bot.pairing"], exec_call
    assert exec_call["env"]["MCP_AUTH_TOKEN"], f"expected the dev stand-ins, so compose can read the files: {exec_call}"

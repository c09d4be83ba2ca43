"""The Makefile as a developer meets it: help by default, and the emulator only when no bot token is set."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.stack import copy_worktree

TARGETS = {"dev", "dev-mcp", "dev-bot", "up", "down", "logs", "ps", "build", "rebuild", "config-check", "model", "test"}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository without the developer's .env."""
    return copy_worktree(tmp_path)


def make(tree: Path, *args: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MCP_", "ALLOWED_"))}
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=tree, env={**base, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, f"expected make {' '.join(args)} to succeed; saw:\n{result.stderr}"
    return result.stdout


def up_command(dry_run: str) -> str:
    lines = [line for line in dry_run.splitlines() if re.search(r"\bup\b", line) and "compose" in line]
    assert len(lines) == 1, f"expected one `up` command in the dry run; saw:\n{dry_run}"
    return lines[0]


def test_help_is_the_default_and_lists_every_target(tree: Path) -> None:
    listed = {line.split()[1] for line in make(tree).splitlines() if line.strip().startswith("make ")}
    assert listed >= TARGETS, f"expected every target in `make`; missing {TARGETS - listed}"


def test_dev_without_a_token_runs_the_emulator(tree: Path) -> None:
    up = up_command(make(tree, "-n", "dev"))
    assert "--profile emulator" in up and "TELEGRAM_API_URL='http://telegram-emulator:8081'" in up, up
    assert "ALLOWED_USER_IDS='1'" in up, f"expected the emulator's user to be the owner: {up}"


def test_dev_with_a_token_talks_to_telegram_and_starts_no_emulator(tree: Path) -> None:
    up = up_command(make(tree, "-n", "dev", TELEGRAM_BOT_TOKEN="42:real-token"))
    assert "--profile emulator" not in up and "telegram-emulator" not in up, up

"""Start-up failures a developer meets first: they get one line naming the variable, not a traceback wall."""

import os
import subprocess
import sys

from tests.e2e.stack import REPO_ROOT


def start_bot(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MCP_", "BUTLER_"))}
    return subprocess.run(
        [sys.executable, "-m", "butler_bot"],
        cwd=REPO_ROOT,
        env={**base, "MCP_AUTH_TOKEN": "x" * 32, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_malformed_token_exits_at_once_with_one_line() -> None:
    result = start_bot(TELEGRAM_BOT_TOKEN="not-a-token")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"expected exit 2, saw {result.returncode}: {result.stderr}"
    assert len(lines) == 1, f"expected one line on stderr, saw {len(lines)}:\n{result.stderr}"
    assert "TELEGRAM_BOT_TOKEN" in lines[0] and "BotFather" in lines[0], lines[0]


def test_missing_token_is_named() -> None:
    result = start_bot()
    assert result.returncode == 2
    assert result.stderr.strip() == "butler-bot: invalid configuration: TELEGRAM_BOT_TOKEN: Field required"

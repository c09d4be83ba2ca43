"""The hot-reload guide's troubleshooting commands, run as written against the dev stack."""

import pytest

from tests.e2e.stack import BASE_FILE, Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("service", "package"), [("mcp-server", "mcp_server"), ("butler-bot", "butler_bot")])
def test_exec_ls_shows_the_mounted_source(stack: Stack, service: str, package: str) -> None:
    listing = stack.exec(service, "ls", "-la", "/app/src")
    assert package in listing, f"expected {package} under /app/src in {service}; saw:\n{listing}"


def test_logs_show_the_reloader(stack: Stack) -> None:
    logs = stack.logs("mcp-server")
    assert "Started reloader process" in logs and "/app/src" in logs, f"expected uvicorn's reloader; saw:\n{logs}"
    bot_logs = stack.logs("butler-bot")
    assert "watchfiles" in bot_logs and "PythonFilter" in bot_logs, f"expected watchfiles; saw:\n{bot_logs}"


def test_config_shows_the_merged_dev_setup(stack: Stack) -> None:
    rendered = stack.run("config").stdout
    assert "--reload" in rendered and "watchfiles" in rendered and "/app/src" in rendered


def test_restart_brings_the_mcp_server_back(stack: Stack) -> None:
    stack.run("restart", "mcp-server")
    stack.wait_healthy("mcp-server", timeout=60)
    assert stack.mcp_health()["status"] == "ok"


def test_build_with_the_production_file_reuses_the_cache(stack: Stack) -> None:
    result = stack.run("build", "mcp-server", "butler-bot", files=[BASE_FILE], timeout=900)
    assert result.returncode == 0

"""The log a developer reads: the project's own DEBUG lines, no third-party chatter, no line per poll."""

import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from shared.logging import configure_logging
from tests.e2e.stack import free_port, wait_until


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def app(scope: dict, receive: object, send: object) -> None:
    """Answers 200, or 401 without a token, like the mcp-server's protected routes."""
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    status = 401 if scope["path"] != "/health" and b"authorization" not in headers else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def access_log() -> Iterator[tuple[str, list[str]]]:
    """A real uvicorn server with its own logging set up, then ours, as `uvicorn mcp_server.app:app` does."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off"))
    configure_logging("DEBUG")
    recorder = Recorder()
    logging.getLogger("uvicorn.access").addHandler(recorder)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}", recorder.lines
    finally:
        server.should_exit = True
        thread.join(10)
        logging.getLogger("uvicorn.access").removeHandler(recorder)


def test_debug_is_for_the_project_loggers_only() -> None:
    configure_logging("DEBUG")
    for name in ("butler_bot.reminders", "mcp_server.db", "shared.settings"):
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), f"expected DEBUG lines from {name}"
    for name in ("aiosqlite", "httpx", "aiogram.event", "mcp.server.lowlevel.server"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), f"expected no DEBUG or INFO lines from {name}"
        assert logger.isEnabledFor(logging.WARNING), f"expected warnings from {name} to show"


def test_warning_level_silences_the_project_info_lines() -> None:
    configure_logging("WARNING")
    assert not logging.getLogger("butler_bot").isEnabledFor(logging.INFO)


def test_polled_successes_leave_no_access_line_and_failures_do(access_log: tuple[str, list[str]]) -> None:
    url, lines = access_log
    claim = "/internal/reminders/claim"
    token = {"Authorization": "Bearer x"}
    with httpx.Client(base_url=url) as client:
        client.get("/health")
        client.post(claim, headers=token)
        client.post(claim)
        client.post("/mcp?x=1", headers=token)
    wait_until(lambda: len(lines) >= 2, 10, "two access lines")
    assert not any("/health" in line or f'{claim} HTTP/1.1" 200' in line for line in lines), (
        f"expected no line for successful polling; saw {lines}"
    )
    assert any(f'POST {claim} HTTP/1.1" 401' in line for line in lines), f"expected the refused claim; saw {lines}"
    assert any('POST /mcp?x=1 HTTP/1.1" 200' in line for line in lines), f"expected a tool call to show; saw {lines}"

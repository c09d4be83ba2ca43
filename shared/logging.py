"""One log format for both services, so `make logs` reads as one stream, and a quiet log while nothing happens."""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# LOG_LEVEL applies to these; third-party libraries (aiosqlite, httpx, aiogram, the MCP SDK) say only warnings.
PROJECT_LOGGERS = ("butler_bot", "mcp_server", "shared")
# Polled every few seconds (health checks, the bot's reminder claims): a success there is not news.
POLLED_PATHS = frozenset({"/health", "/internal/reminders/claim"})


class SkipPolledSuccess(logging.Filter):
    """Drops uvicorn access lines for successful requests to the polled paths; failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access records carry (client, method, path, http version, status).
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = str(args[2]).split("?", 1)[0], args[4]
        return not (path in POLLED_PATHS and isinstance(status, int) and status < 400)


def configure_logging(level: str) -> None:
    project_level = logging.getLevelName(level.upper())
    logging.basicConfig(level=max(project_level, logging.WARNING), format=LOG_FORMAT, force=True)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(project_level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, SkipPolledSuccess) for f in access.filters):
        access.addFilter(SkipPolledSuccess())

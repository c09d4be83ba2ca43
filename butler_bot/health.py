"""A loopback-only /health endpoint for the container healthcheck: the bot has no other HTTP surface.

200 while every check passes (polling has started, the reminder loop is running); 503 naming the ones that fail.
"""

import os
from collections.abc import Callable, Mapping

from aiohttp import web

CHECKS_KEY = web.AppKey("checks", Mapping[str, Callable[[], bool]])


async def health(request: web.Request) -> web.Response:
    checks = {name: check() for name, check in request.app[CHECKS_KEY].items()}
    failing = [name for name, passed in checks.items() if not passed]
    status = "failing: " + ", ".join(failing) if failing else "ok"
    return web.json_response({"status": status, "pid": os.getpid(), **checks}, status=503 if failing else 200)


async def start_health_server(port: int, checks: Mapping[str, Callable[[], bool]]) -> web.AppRunner:
    app = web.Application()
    app[CHECKS_KEY] = checks
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner

"""A loopback-only /health endpoint for the container healthcheck: the bot has no other HTTP surface."""

import os

from aiohttp import web

READY_KEY = web.AppKey("ready", dict)


async def health(request: web.Request) -> web.Response:
    state = request.app[READY_KEY]
    status = 200 if state["polling"] else 503
    return web.json_response(
        {"status": "ok" if status == 200 else "starting", "pid": os.getpid(), **state}, status=status
    )


async def start_health_server(port: int, state: dict[str, bool]) -> web.AppRunner:
    app = web.Application()
    app[READY_KEY] = state
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner

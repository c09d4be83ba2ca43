"""The ASGI app uvicorn serves: GET /health and the MCP endpoint at /mcp.

Run it with `uvicorn mcp_server.app:app --host 0.0.0.0 --port 8000`.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.transport_security import TransportSecuritySettings

from mcp_server.auth import BearerTokenMiddleware
from mcp_server.server import build_mcp_server
from mcp_server.settings import McpServerSettings
from shared.logging import configure_logging
from shared.settings import load_settings
from shared.version import VERSION

settings = load_settings(McpServerSettings, "mcp-server")
configure_logging(settings.log_level)
log = logging.getLogger("mcp_server")

mcp = build_mcp_server(settings)
# Built before the lifespan runs: the session manager exists only once the app is made.
mcp_app = mcp.streamable_http_app(
    streamable_http_path="/mcp",
    transport_security=TransportSecuritySettings(allowed_hosts=list(settings.allowed_hosts)),
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # A mounted sub-app's lifespan never runs, so the host app starts the MCP session manager.
    async with mcp.session_manager.run():
        log.info("mcp-server %s ready (%s mode)", VERSION, settings.butler_env)
        yield


app = FastAPI(title="Butler MCP server", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
app.add_middleware(BearerTokenMiddleware, token=settings.mcp_auth_token.get_secret_value())


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "service": "mcp-server", "version": VERSION}


# Mounted at the root with the endpoint at /mcp itself, so clients get no /mcp -> /mcp/ redirect.
app.mount("/", mcp_app)

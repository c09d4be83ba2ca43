"""The web app: GET /health, the MCP endpoint at /mcp and the bot's /internal endpoints, built from settings."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mcp.server.transport_security import TransportSecuritySettings
from sqlalchemy.exc import SQLAlchemyError

from mcp_server.auth import BearerTokenMiddleware
from mcp_server.db import Database, StorageRefused
from mcp_server.delivery import delivery_router
from mcp_server.export import export_router
from mcp_server.server import build_mcp_server
from mcp_server.settings import McpServerSettings
from shared.version import VERSION

log = logging.getLogger("mcp_server")


def create_app(settings: McpServerSettings) -> FastAPI:
    """Build the app; nothing touches the database until the lifespan starts."""
    db = Database(settings.database_url.get_secret_value())
    mcp = build_mcp_server(settings, db)
    # Built before the lifespan runs: the session manager exists only once the app is made.
    mcp_app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=TransportSecuritySettings(allowed_hosts=list(settings.allowed_hosts)),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await db.migrate()
        except (OSError, SQLAlchemyError) as exc:
            # Unreachable or unusable: the operator needs the reason in one line, not a traceback.
            log.error("cannot use the database %s: %s", db.safe_url, exc)
            raise SystemExit(1) from None
        # A mounted sub-app's lifespan never runs, so the host app starts the MCP session manager.
        async with mcp.session_manager.run():
            log.info("mcp-server %s ready (%s mode)", VERSION, settings.butler_env)
            yield
        await db.close()

    app = FastAPI(title="Butler MCP server", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BearerTokenMiddleware, token=settings.mcp_auth_token.get_secret_value())

    @app.exception_handler(StorageRefused)
    async def storage_refused(_: Request, exc: StorageRefused) -> JSONResponse:
        # The bot's /internal calls retry a 503 later; Database.session has logged the reason.
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "mcp-server", "version": VERSION}

    # Kept on the app for whoever needs the tool registry itself (the dev hot-reload probe adds a tool to it).
    app.state.mcp = mcp
    app.include_router(delivery_router(db, settings.delivery, settings.default_timezone))
    app.include_router(export_router(db, settings.default_timezone))
    # Mounted at the root with the endpoint at /mcp itself, so clients get no /mcp -> /mcp/ redirect.
    app.mount("/", mcp_app)
    return app

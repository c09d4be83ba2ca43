"""Bearer-token check for /mcp and the bot's /internal endpoints; /health stays open for healthchecks."""

import secrets

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class BearerTokenMiddleware:
    def __init__(self, app: ASGIApp, token: str, protected_prefixes: tuple[str, ...] = ("/mcp", "/internal")) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.protected_prefixes = protected_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.protected_prefixes):
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if not secrets.compare_digest(sent, self.expected):
                response = JSONResponse(
                    {"error": "missing or wrong bearer token: send 'Authorization: Bearer <MCP_AUTH_TOKEN>'"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""The ASGI app uvicorn serves, configured from config/mcp_server.yaml and the environment.

Run it with `uvicorn mcp_server.app:app --host 0.0.0.0 --port 8000`.
"""

import gc

from mcp.server import MCPServer

from mcp_server.settings import McpServerSettings
from mcp_server.web import create_app
from shared.logging import configure_logging
from shared.settings import load_settings

settings = load_settings(McpServerSettings, "mcp-server")
configure_logging(settings.log_level)
app = create_app(settings)
mcp: MCPServer = app.state.mcp
# What is loaded by now (modules, schemas, models) lives as long as the process: leave it out of every later
# garbage collection, or a full one walks ~170k objects (~0.1 s) every few seconds under load.
gc.freeze()

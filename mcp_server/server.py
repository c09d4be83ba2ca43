"""The MCP server object with every tool registered."""

from mcp.server import MCPServer

from mcp_server.settings import McpServerSettings
from mcp_server.tools import clock
from shared.version import VERSION


def build_mcp_server(settings: McpServerSettings) -> MCPServer:
    mcp = MCPServer(settings.server_name, instructions=settings.instructions or None, version=VERSION)
    clock.register(mcp, settings.default_timezone)
    return mcp

"""The MCP server object with every enabled tool registered."""

from mcp.server import MCPServer

from mcp_server.db import Database
from mcp_server.settings import McpServerSettings
from mcp_server.tools import agenda, clock, notes, reminders, tasks
from mcp_server.tools.catalog import TOOL_NAMES
from mcp_server.tools.common import ToolDeps
from mcp_server.users import UserTimezones
from shared.version import VERSION


def build_mcp_server(settings: McpServerSettings, db: Database) -> MCPServer:
    mcp = MCPServer(settings.server_name, instructions=settings.instructions or None, version=VERSION)
    deps = ToolDeps(db=db, limits=settings.limits, timezones=UserTimezones(settings.default_timezone))
    for domain in (tasks, notes, reminders, clock, agenda):
        domain.register(mcp, deps)
    for name in TOOL_NAMES:
        if not settings.tool_enabled(name):
            mcp.remove_tool(name)
    return mcp

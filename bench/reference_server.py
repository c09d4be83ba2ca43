"""The benchmark's yardstick: the same MCP SDK serving one trivial tool, with no database and no auth.

Run it with `uvicorn bench.reference_server:app --port 8001`; bench.mcp_tools starts it itself.
"""

from mcp.server import MCPServer

mcp = MCPServer("reference")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


app = mcp.streamable_http_app()

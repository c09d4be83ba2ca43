"""The butler's MCP server: tools and memory over Streamable HTTP.

Run it with `uvicorn mcp_server.app:app --host 0.0.0.0 --port 8000` (the image's default command).
"""

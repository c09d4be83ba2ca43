"""The release both services report (in /health and to MCP clients)."""

VERSION = "0.1.0"

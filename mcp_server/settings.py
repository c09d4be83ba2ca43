"""MCP server settings: environment variables win over config/mcp_server.yaml."""

from typing import ClassVar

from shared.settings import ServiceSettings


class McpServerSettings(ServiceSettings):
    yaml_file: ClassVar[str] = "mcp_server.yaml"

    server_name: str = "Butler"
    instructions: str = ""
    default_timezone: str = "UTC"
    # Host headers the DNS-rebinding check accepts: the compose service name and loopback.
    allowed_hosts: tuple[str, ...] = (
        "mcp-server",
        "mcp-server:*",
        "localhost",
        "localhost:*",
        "127.0.0.1",
        "127.0.0.1:*",
    )

"""Time tools: the LLM has no clock of its own."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field


class CurrentTime(BaseModel):
    iso: str = Field(description="Current local time, ISO 8601 with offset")
    timezone: str = Field(description="IANA timezone the time is shown in")
    weekday: str = Field(description="Day of the week, in English")


def register(mcp: MCPServer, default_timezone: str) -> None:
    @mcp.tool()
    def current_time(
        timezone: str | None = Field(None, description="IANA timezone such as 'Europe/Moscow'; default: the server's"),
    ) -> CurrentTime:
        """Tell the current date and time, so relative dates like 'tomorrow' can be resolved."""
        name = timezone or default_timezone
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"Unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin'.") from None
        now = datetime.now(zone)
        return CurrentTime(iso=now.isoformat(timespec="seconds"), timezone=name, weekday=now.strftime("%A"))

"""Time tools: the LLM has no clock of its own, and each user lives in their own timezone."""

from datetime import datetime
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_server.models import utcnow
from mcp_server.times import local_iso, resolve_timezone
from mcp_server.tools.common import ToolDeps, text_param
from mcp_server.tools.tasks import realign_whole_day_tasks
from mcp_server.users import UserId


class CurrentTime(BaseModel):
    iso: str = Field(description="Current local time, ISO 8601 with UTC offset")
    timezone: str = Field(description="IANA timezone the time is shown in")
    weekday: str = Field(description="Day of the week, in English")


def current_time(now: datetime, timezone: str) -> CurrentTime:
    zone = resolve_timezone(timezone)
    return CurrentTime(iso=local_iso(now, zone), timezone=timezone, weekday=now.astimezone(zone).strftime("%A"))


def register(mcp: MCPServer, deps: ToolDeps) -> None:
    zone_type = text_param(64, "IANA timezone name such as 'Europe/Moscow' or 'America/New_York'")

    @mcp.tool(title="Current time", annotations=ToolAnnotations(read_only_hint=True))
    async def time_now(
        user_id: UserId,
        timezone: Annotated[zone_type | None, Field(description="Another IANA timezone to tell the time in")] = None,
    ) -> CurrentTime:
        """Tell the current date and time in the user's timezone, so 'tomorrow' or 'in two hours' can be resolved."""
        if timezone is None:
            async with deps.db.session() as session:
                timezone = (await deps.zone(session, user_id)).key
        return current_time(utcnow(), timezone)

    @mcp.tool(title="Set the user's timezone", annotations=ToolAnnotations(idempotent_hint=True))
    async def time_set_timezone(user_id: UserId, timezone: zone_type) -> CurrentTime:
        """Set the user's timezone (where they live now); every time shown to them follows it from then on."""
        zone = resolve_timezone(timezone)
        async with deps.db.session() as session:
            await deps.timezones.save(session, user_id, zone)
            await realign_whole_day_tasks(session, user_id, zone)
        deps.timezones.remember(user_id, zone)
        return current_time(utcnow(), timezone)

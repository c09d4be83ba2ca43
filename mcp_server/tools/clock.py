"""Time tools: the LLM has no clock of its own, and each user lives in their own timezone."""

from datetime import datetime

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_server.models import utcnow
from mcp_server.series import follow_timezone
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
    zone_type = text_param(64, "IANA name, e.g. Europe/Paris")

    @mcp.tool(title="Current time", annotations=ToolAnnotations(read_only_hint=True))
    async def time_now(
        user_id: UserId,
        timezone: text_param(64) | None = None,
    ) -> CurrentTime:
        """Tell the current time, in the user's timezone or another IANA one."""
        if timezone is None:
            async with deps.db.session() as session:
                timezone = (await deps.zone(session, user_id)).key
        return current_time(utcnow(), timezone)

    @mcp.tool(title="Set the user's timezone", annotations=ToolAnnotations(idempotent_hint=True))
    async def time_set_timezone(user_id: UserId, timezone: zone_type) -> CurrentTime:
        """Set the user's timezone to where they live now."""
        zone = resolve_timezone(timezone)
        async with deps.db.session() as session:
            before = await deps.zone(session, user_id)
            await deps.timezones.save(session, user_id, zone)
            await realign_whole_day_tasks(session, user_id, zone)
            await follow_timezone(session, user_id, before, zone)
        deps.timezones.remember(user_id, zone)
        return current_time(utcnow(), timezone)

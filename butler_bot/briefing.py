"""The morning briefing: the day's agenda, sent at the user's chosen time, built from the tools without the model.

The MCP server keeps the daily time (agenda_today's `daily_at`) as a reminder series of kind "briefing"; each
occurrence reaches the bot like any reminder, and the bot writes it from agenda_today with the same view as
/today, so it costs no model time and says nothing the tools did not.
"""

from datetime import datetime
from typing import Any

from butler_bot.backends import Backends
from butler_bot.core import ToolsUnavailable
from butler_bot.texts import Texts
from butler_bot.views import agenda_view
from shared.results import Agenda

AGENDA_TOOL = "agenda_today"
# What `daily_at` takes besides "HH:MM", to stop the briefing.
OFF = "off"
# What `/briefing 8`, `/briefing 08:00` and `/briefing 8:30` are read with.
TIME_FORMATS = ("%H:%M", "%H")


def time_of_day(text: str) -> str | None:
    """'8', '8:30' or '08:30' as 'HH:MM'; None for anything else."""
    for time_format in TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), time_format).strftime("%H:%M")
        except ValueError:
            continue
    return None


async def briefing_text(backends: Backends, user_id: int, texts: Texts) -> str:
    """The briefing for `user_id` now; ToolsUnavailable when the agenda cannot be read, so it is sent later."""
    conversations = await backends.conversations()
    result = await conversations.tools.call(user_id, AGENDA_TOOL, {})
    if result.is_error or result.data is None:
        raise ToolsUnavailable(f"{AGENDA_TOOL} failed: {result.text}")
    return f"{texts('briefing_header')}\n\n{agenda_view(result.data, texts)}"


def briefing_view(data: dict[str, Any], texts: Texts) -> str:
    """The briefing setting from agenda_today's result, checked against the shape the server builds it with."""
    agenda = Agenda.model_validate(data)
    if agenda.daily_at is None:
        return texts("briefing_off")
    return texts("briefing_on", at=agenda.daily_at, timezone=agenda.timezone)

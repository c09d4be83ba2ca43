"""A press on a reminder's button: the MCP server's /done and /snooze endpoints, for the user who pressed.

Presses are rare, so each gets a short-lived HTTP session: nothing to keep open or close at shutdown.
"""

from uuid import UUID

import aiohttp

from butler_bot.core import ToolsUnavailable
from butler_bot.internal_api import internal_session
from butler_bot.keyboards import ReminderAction
from butler_bot.settings import BotSettings
from shared.results import PressResult, ReminderPress, SnoozeRequest


async def press_reminder(
    settings: BotSettings, user_id: int, reminder_id: int, key: UUID, action: ReminderAction
) -> PressResult | None:
    """What became of the reminder; None when the server knows no such reminder of this user."""
    if action == "done":
        path, body = "done", ReminderPress(user_id=user_id, reminder_id=reminder_id)
    else:
        path, body = "snooze", SnoozeRequest(user_id=user_id, reminder_id=reminder_id, snooze=action)
    try:
        async with (
            internal_session(settings, settings.mcp_timeout) as http,
            http.post(f"/internal/reminders/{key}/{path}", json=body.model_dump()) as response,
        ):
            if response.status == 404:
                return None
            response.raise_for_status()
            return PressResult.model_validate(await response.json())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ToolsUnavailable(f"POST /internal/reminders/…/{path}: {exc!r}") from exc

"""The MCP server's /internal endpoints: the bot's own (reminder delivery, buttons, export), never the model's."""

import aiohttp

from butler_bot.settings import BotSettings


def internal_session(settings: BotSettings, timeout: float, user_id: int | None = None) -> aiohttp.ClientSession:
    """A session on the MCP server with its bearer token, acting for `user_id` when one is given."""
    headers = {"Authorization": f"Bearer {settings.mcp_auth_token.get_secret_value()}"}
    if user_id is not None:
        headers["X-Telegram-User-Id"] = str(user_id)
    return aiohttp.ClientSession(
        base_url=settings.mcp_base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    )

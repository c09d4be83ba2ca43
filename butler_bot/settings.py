"""Bot settings: environment variables win over config/butler_bot.yaml."""

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from aiogram.utils.token import TokenValidationError, validate_token
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.settings import CONFIG_DIR, ServiceSettings


class BotSettings(ServiceSettings):
    yaml_file: ClassVar[str] = "butler_bot.yaml"

    telegram_bot_token: SecretStr
    # The Bot API server's base URL: the official one, a self-hosted Bot API server or the dev emulator.
    telegram_api_url: str = "https://api.telegram.org"
    # Telegram user ids that may use the bot (authoritative when set); empty: the owner pairs with the one-time
    # code the bot logs (make pair shows it) and lets others in with /allow. The environment takes "123,456".
    allowed_user_ids: Annotated[tuple[int, ...], NoDecode] = ()
    allow_group_chats: bool = False
    refusal_cooldown_seconds: float = Field(60.0, ge=0)

    mcp_url: str = "http://mcp-server:8000/mcp"
    mcp_timeout: float = Field(15.0, gt=0)
    tools_cache_seconds: float = Field(60.0, ge=0)

    llm_base_url: str = "http://mistral:8080/v1"
    llm_model: str = "mistral"
    llm_api_key: SecretStr = SecretStr("not-needed")
    # Seconds one message may wait for the model in all; streamed text restarts the clock.
    llm_timeout: float = Field(60.0, gt=0)
    # Low: tool calls need the exact names and JSON a tool expects. None leaves it to the server.
    llm_temperature: float | None = Field(0.2, ge=0, le=2)
    # Tokens one answer may take; a longer one is cut and the user told so.
    llm_max_tokens: int = Field(512, ge=16)
    # The context per request when the server does not say (llama-server's /props does).
    llm_context_tokens: int = Field(8192, ge=512)
    agent_max_steps: int = Field(5, ge=1, le=20)
    # Characters of one tool result the model sees; the rest is cut (a long list would crowd out the chat).
    tool_result_max_chars: int = Field(6000, ge=200)

    history_turns: int = Field(10, ge=0)
    # SQLite file for chat history and delivered-reminder ids; on the bot's data volume in the stack.
    store_path: Path = Path("/data/butler_bot.sqlite3")
    system_prompt_file: Path = CONFIG_DIR / "butler_bot_prompt.md"
    texts_file: Path = CONFIG_DIR / "butler_bot_texts.yaml"

    reminder_poll_seconds: float = Field(1.0, gt=0)
    reminder_lease_seconds: int = Field(60, ge=5, le=3600)

    health_port: int = 8090
    # On shutdown, seconds the answers in progress get to finish; below the stop timeout of whatever stops the bot.
    shutdown_grace_seconds: float = Field(20.0, ge=0)

    @field_validator("telegram_bot_token")
    @classmethod
    def token_has_botfather_shape(cls, token: SecretStr) -> SecretStr:
        try:
            validate_token(token.get_secret_value())
        except TokenValidationError:
            raise ValueError(
                "TELEGRAM_BOT_TOKEN is malformed: expected '<digits>:<secret>' as @BotFather gives it"
            ) from None
        return token

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def user_ids_from_text(cls, value: Any) -> Any:
        """Accept "123,456", "123 456", a JSON list, a YAML list or a single number."""
        if isinstance(value, int):
            return (value,)
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        parts = text.replace(",", " ").split()
        if not all(part.isdecimal() for part in parts):
            raise ValueError(f"ALLOWED_USER_IDS must be numeric Telegram ids separated by commas, not {value!r}")
        return tuple(int(part) for part in parts)

    @field_validator("system_prompt_file", "texts_file")
    @classmethod
    def relative_to_config_dir(cls, path: Path) -> Path:
        return path if path.is_absolute() else CONFIG_DIR / path

    @property
    def mcp_base_url(self) -> str:
        """The MCP server's root (where /internal/reminders lives), from MCP_URL."""
        parts = urlsplit(self.mcp_url)
        return f"{parts.scheme}://{parts.netloc}"

"""Bot settings: environment variables win over config/butler_bot.yaml."""

from typing import ClassVar

from aiogram.utils.token import TokenValidationError, validate_token
from pydantic import Field, SecretStr, field_validator

from shared.settings import ServiceSettings


class BotSettings(ServiceSettings):
    yaml_file: ClassVar[str] = "butler_bot.yaml"

    telegram_bot_token: SecretStr
    # The Bot API server's base URL: the official one, a self-hosted Bot API server or the dev emulator.
    telegram_api_url: str = "https://api.telegram.org"
    mcp_url: str = "http://mcp-server:8000/mcp"
    llm_base_url: str = "http://mistral:8080/v1"
    llm_model: str = "mistral"
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_timeout: float = Field(60.0, gt=0)
    health_port: int = 8090

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

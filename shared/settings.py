"""The settings base both services build on: environment first, then the service's YAML file in config/."""

import sys
from pathlib import Path
from typing import ClassVar, Literal, Self, TypeVar

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# Values shipped in .env.example and the dev defaults: fine on a laptop, refused in production.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "dev-only", "placeholder")


class ServiceSettings(BaseSettings):
    """Fields and loading rules shared by every service; subclasses name their YAML file."""

    yaml_file: ClassVar[str]

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    butler_env: Literal["development", "production"] = "production"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mcp_auth_token: SecretStr

    @model_validator(mode="after")
    def refuse_placeholder_secrets_in_production(self) -> Self:
        token = self.mcp_auth_token.get_secret_value()
        if self.butler_env == "production" and (len(token) < 16 or any(m in token for m in PLACEHOLDER_MARKERS)):
            raise ValueError(
                "MCP_AUTH_TOKEN is empty or a placeholder: set a random secret of 16+ characters "
                "in .env (for example: openssl rand -hex 32)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_settings = YamlConfigSettingsSource(settings_cls, yaml_file=CONFIG_DIR / cls.yaml_file)
        return init_settings, env_settings, yaml_settings


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(settings_cls: type[SettingsT], service: str) -> SettingsT:
    """Build the settings, or stop the process with one line per problem instead of a traceback."""
    try:
        return settings_cls()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]).upper()
            reason = error["msg"].removeprefix("Value error, ")
            prefix = f"{field}: " if field and reason and not reason.startswith(field) else ""
            print(f"{service}: invalid configuration: {prefix}{reason}", file=sys.stderr)
        raise SystemExit(2) from None

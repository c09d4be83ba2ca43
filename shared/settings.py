"""The settings base both services build on: environment first, then the service's YAML file in config/."""

import difflib
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# Values shipped in .env.example and the dev defaults: fine on a laptop, refused in production.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "dev-only", "placeholder")


class UnknownSettings(ValueError):
    """The YAML file names settings that do not exist: a typo would otherwise be ignored without a word."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path.name}: {'; '.join(problems)}")
        self.problems = [f"{path.name}: {problem}" for problem in problems]


def unknown_keys(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Each key of `data` that names no field of `model` (nested models too), with the closest names."""
    problems = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            problems.append(f"unknown setting '{prefix}{key}'{hint}")
        elif isinstance(value, dict) and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            problems += unknown_keys(field.annotation, value, f"{prefix}{key}.")
    return problems


class StrictYamlSource(YamlConfigSettingsSource):
    """The service's YAML file; a key that names no setting stops the start with the closest name."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        problems = unknown_keys(self.settings_cls, data)
        if problems:
            raise UnknownSettings(CONFIG_DIR / self.settings_cls.yaml_file, problems)
        return data


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
        yaml_settings = StrictYamlSource(settings_cls, yaml_file=CONFIG_DIR / cls.yaml_file)
        return init_settings, env_settings, yaml_settings


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(settings_cls: type[SettingsT], service: str) -> SettingsT:
    """Build the settings, or stop the process with one line per problem instead of a traceback."""
    try:
        return settings_cls()
    except UnknownSettings as exc:
        for problem in exc.problems:
            print(f"{service}: invalid configuration: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]).upper()
            reason = error["msg"].removeprefix("Value error, ")
            prefix = f"{field}: " if field and reason and not reason.startswith(field) else ""
            print(f"{service}: invalid configuration: {prefix}{reason}", file=sys.stderr)
        raise SystemExit(2) from None

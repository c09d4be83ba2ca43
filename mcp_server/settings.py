"""MCP server settings: environment variables win over config/mcp_server.yaml.

Nested values take a double underscore in the environment, e.g. `LIMITS__MAX_TEXT_LENGTH=2000`.
"""

from pathlib import Path
from typing import ClassVar, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from mcp_server.tools.catalog import DOMAINS, TOOL_NAMES
from shared.settings import ServiceSettings

SQLITE_PREFIX = "sqlite+aiosqlite:///"
POSTGRES_PREFIX = "postgresql+asyncpg://"


class ToolLimits(BaseModel):
    """Size limits on what the LLM may store or ask for; a longer value is refused with a tool error."""

    max_title_length: int = Field(200, ge=1, description="Task titles")
    max_text_length: int = Field(4000, ge=1, description="Task notes, note bodies and reminder texts")
    max_query_length: int = Field(200, ge=1, description="Search and filter text")
    max_items_per_user: int = Field(10_000, ge=1, description="Tasks, notes and reminders each, per user")
    list_default: int = Field(20, ge=1, description="Rows a list or search returns when the LLM names no limit")
    list_max: int = Field(100, ge=1, description="Rows a list or search returns at most")
    reminder_horizon_days: int = Field(3660, ge=1, description="How far ahead a reminder may be set")


class DeliverySettings(BaseModel):
    """The bot's reminder-delivery endpoints (/internal/reminders/...)."""

    late_after_seconds: int = Field(300, ge=0, description="A reminder claimed this long after it was due is 'late'")
    max_lease_seconds: int = Field(3600, ge=1)
    max_claim: int = Field(100, ge=1, description="Reminders one claim returns at most")
    max_attempts: int = Field(12, ge=1, le=30, description="Claims of one reminder before it is marked failed")
    retry_max_seconds: int = Field(3600, ge=1, description="Longest wait before a retry the bot asked for")


class McpServerSettings(ServiceSettings):
    yaml_file: ClassVar[str] = "mcp_server.yaml"

    server_name: str = "Butler"
    instructions: str = ""
    default_timezone: str = "UTC"
    # Four slashes: an absolute path. The named volume is mounted at /data.
    database_url: SecretStr = SecretStr(SQLITE_PREFIX + "/data/butler.db")
    # Tool names or whole domains (tasks, notes, reminders, time, agenda).
    enabled_tools: tuple[str, ...] = tuple(DOMAINS)
    limits: ToolLimits = ToolLimits()
    delivery: DeliverySettings = DeliverySettings()
    # Host headers the DNS-rebinding check accepts: the compose service name and loopback.
    allowed_hosts: tuple[str, ...] = (
        "mcp-server",
        "mcp-server:*",
        "localhost",
        "localhost:*",
        "127.0.0.1",
        "127.0.0.1:*",
    )

    @field_validator("default_timezone")
    @classmethod
    def known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin'") from None
        return name

    @field_validator("database_url")
    @classmethod
    def supported_database(cls, url: SecretStr) -> SecretStr:
        value = url.get_secret_value()
        # The usual libpq spellings work too; the server always talks to PostgreSQL through asyncpg.
        for alias in ("postgres://", "postgresql://"):
            if value.startswith(alias):
                return SecretStr(POSTGRES_PREFIX + value.removeprefix(alias))
        if value.startswith(POSTGRES_PREFIX):
            return url
        if not value.startswith(SQLITE_PREFIX):
            raise ValueError(
                f"use {SQLITE_PREFIX}/path/to/butler.db or {POSTGRES_PREFIX}user:password@host/dbname, "
                f"not {value.split(':', 1)[0]}:..."
            )
        path = value.removeprefix(SQLITE_PREFIX)
        if path in ("", ":memory:") or "mode=memory" in path:
            # Each connection would get its own empty database: the migrated tables vanish with the first one.
            raise ValueError(
                f"an in-memory SQLite database is lost between connections: use {SQLITE_PREFIX}/data/butler.db"
            )
        if not Path(path).parent.is_dir():
            raise ValueError(f"the directory of the SQLite file {path} does not exist: create it or set DATABASE_URL")
        return url

    @field_validator("enabled_tools")
    @classmethod
    def known_tools(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in DOMAINS and name not in TOOL_NAMES]
        if unknown:
            raise ValueError(f"unknown tool or domain {', '.join(unknown)}; known domains: {', '.join(DOMAINS)}")
        return names

    @model_validator(mode="after")
    def list_default_within_max(self) -> Self:
        if self.limits.list_default > self.limits.list_max:
            raise ValueError("LIMITS__LIST_DEFAULT must not exceed LIMITS__LIST_MAX")
        return self

    def tool_enabled(self, name: str) -> bool:
        domain = name.split("_", 1)[0]
        return name in self.enabled_tools or domain in self.enabled_tools

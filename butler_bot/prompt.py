"""The system prompt: the persona in config/butler_bot_prompt.md, with the user's date, timezone and language.

The clock goes on each user message instead (`stamped`): the system prompt then changes once a day, so the
model server re-reads it, and the tools before it, from its prompt cache on every other message.
"""

from datetime import UTC, datetime
from string import Template
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from butler_bot.texts import WatchedFile

LANGUAGE_NAMES = {"en": "English", "ru": "Russian"}


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def stamped(text: str, *, timezone: str | None, now: datetime | None = None) -> str:
    """The user's message with the local time it was written, as the model reads it."""
    local = (now or datetime.now(UTC)).astimezone(zone_or_utc(timezone))
    return f"[{local:%H:%M}] {text}"


class SystemPrompt:
    def __init__(self, file: WatchedFile) -> None:
        self._file = file

    def render(self, *, timezone: str | None, language: str, now: datetime | None = None) -> str:
        """Fill $date, $time, $weekday, $timezone and $language; other `$` signs in the file stay as written."""
        zone = zone_or_utc(timezone)
        local = (now or datetime.now(UTC)).astimezone(zone)
        return Template(self._file.read()).safe_substitute(
            date=local.strftime("%Y-%m-%d"),
            time=local.strftime("%H:%M"),
            weekday=local.strftime("%A"),
            timezone=zone.key,
            language=LANGUAGE_NAMES.get(language, language),
        )

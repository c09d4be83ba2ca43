"""The bot's fixed texts in Russian and English (config/butler_bot_texts.yaml), chosen by Telegram language."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


def language_of(language_code: str | None) -> str:
    """Russian for a Russian Telegram client, English for everyone else."""
    return "ru" if (language_code or "").lower().startswith("ru") else DEFAULT_LANGUAGE


@dataclass
class WatchedFile:
    """A config file reread when it changes on disk, so wording can be tuned without a restart."""

    path: Path
    _mtime: float = field(default=-1.0, init=False)
    _text: str = field(default="", init=False)

    def read(self) -> str:
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            self._text, self._mtime = self.path.read_text(encoding="utf-8"), mtime
        return self._text


class Texts:
    """One language's texts: `texts("help", user_id=1)`."""

    def __init__(self, language: str, table: dict[str, str], fallback: dict[str, str]) -> None:
        self.language = language
        self._table = table
        self._fallback = fallback

    def __call__(self, key: str, **values: object) -> str:
        template = self._table.get(key) or self._fallback[key]
        return template.format(**values) if values else template


class TextBook:
    def __init__(self, path: Path) -> None:
        self._file = WatchedFile(path)
        self._tables: dict[str, dict[str, str]] = {}
        self._source = ""
        self._load()

    def _load(self) -> None:
        source = self._file.read()
        if source == self._source:
            return
        tables = yaml.safe_load(source)
        missing = [language for language in LANGUAGES if not isinstance(tables.get(language), dict)]
        if missing:
            raise ValueError(f"{self._file.path} has no section for {', '.join(missing)}")
        self._tables, self._source = tables, source

    def texts(self, language: str) -> Texts:
        try:
            self._load()
        except (OSError, ValueError, yaml.YAMLError) as exc:
            # A half-saved edit must not take the bot down: keep the last good texts.
            log.error("cannot reload %s, keeping the previous texts: %s", self._file.path, exc)
        return Texts(language, self._tables.get(language, {}), self._tables[DEFAULT_LANGUAGE])

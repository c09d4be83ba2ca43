"""The bot's fixed texts in Russian and English (config/butler_bot_texts.yaml), chosen by Telegram language.

The file is reread when it changes, so wording can be tuned without a restart. A version that does not parse,
or has the wrong shape (empty, a list, a section that is not a mapping of texts), is not used: the last good
version stays, and the log says once what is wrong. A text the file lacks, or cannot fill in, comes from the
built-in texts: the texts file shipped in the image, read once at start-up.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shared.settings import CONFIG_DIR

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
SHIPPED_TEXTS = CONFIG_DIR / "butler_bot_texts.yaml"

Tables = dict[str, dict[str, str]]


def language_of(language_code: str | None) -> str:
    """Russian for a Russian Telegram client, English for everyone else."""
    return "ru" if (language_code or "").lower().startswith("ru") else DEFAULT_LANGUAGE


@dataclass
class WatchedFile:
    """A config file reread when it changes on disk, so wording can be tuned without a restart.

    A save that leaves it empty or unreadable (an editor that truncates before it writes, or saves by rename)
    keeps the last version read, and the log says so once.
    """

    path: Path
    _mtime: float | None = field(default=None, init=False)
    _text: str | None = field(default=None, init=False)
    _reported: str = field(default="", init=False)

    def read(self) -> str:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime and self._text is not None:
                return self._text
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            if self._text is None:
                raise
            return self._keep(self._text, f"cannot be read ({exc})")
        self._mtime = mtime
        if not text.strip() and self._text is not None:
            return self._keep(self._text, "is empty")
        self._text, self._reported = text, ""
        return text

    def _keep(self, last: str, problem: str) -> str:
        if problem != self._reported:
            self._reported = problem
            log.warning("%s %s: keeping the last version read", self.path, problem)
        return last


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def parse_texts(source: str) -> Tables:
    """The texts by language; ValueError (or yaml.YAMLError) says what is wrong with the source."""
    tables = yaml.safe_load(source)
    if not isinstance(tables, dict):
        raise ValueError(f"expected a mapping of languages ({', '.join(LANGUAGES)}) to texts, got {_kind(tables)}")
    for language, table in tables.items():
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}: expected only {', '.join(LANGUAGES)}")
        if not isinstance(table, dict):
            raise ValueError(f"expected {language!r} to map text names to texts, got {_kind(table)}")
        for key, text in table.items():
            if not isinstance(text, str):
                raise ValueError(f"expected {language}.{key} to be a text, got {_kind(text)}")
    return tables


class Texts:
    """One language's texts: `texts("help", user_id=1)`. Looked up in the file, then the built-in texts."""

    def __init__(self, language: str, tables: list[dict[str, str]], book: "TextBook") -> None:
        self.language = language
        self._tables = tables
        self._book = book

    def __contains__(self, key: str) -> bool:
        return any(table.get(key) for table in self._tables)

    def __call__(self, key: str, **values: object) -> str:
        for table in self._tables:
            template = table.get(key)
            if not template:
                continue
            if not values:
                return template
            try:
                return template.format(**values)
            except (KeyError, IndexError, ValueError) as exc:
                self._book.warn_once(f"{self.language}.{key} {template!r} cannot be filled in ({exc!r})")
        raise KeyError(f"no usable text {key!r} for {self.language}, not even a built-in one")


class TextBook:
    def __init__(self, path: Path, builtin: Path = SHIPPED_TEXTS) -> None:
        try:
            self._builtin = parse_texts(builtin.read_text(encoding="utf-8"))
            # A file may leave out a whole language; the built-in texts may not.
            if missing := [language for language in LANGUAGES if language not in self._builtin]:
                raise ValueError(f"no section for {', '.join(missing)}")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ValueError(f"the built-in texts {builtin} are broken, so the bot has nothing to say: {exc}") from exc
        self._file = WatchedFile(path)
        self._tables: Tables = {}
        # The last source looked at, good or bad: each version is judged (and logged) once.
        self._seen: str | None = None
        self._warned: set[str] = set()
        self._load()

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s: %s", self._file.path, message)

    def _load(self) -> None:
        try:
            source = self._file.read()
        except (OSError, UnicodeDecodeError) as exc:
            self.warn_once(f"cannot be read ({exc}), keeping the built-in texts")
            return
        if source == self._seen:
            return
        self._seen = source
        try:
            tables = parse_texts(source)
        except (ValueError, yaml.YAMLError) as exc:
            what = "the last good version" if self._tables else "the built-in texts"
            self.warn_once(f"not used, keeping {what}: {exc}")
            return
        self._tables = tables
        self._warned.clear()
        unknown, missing = [], []
        for language, builtin in self._builtin.items():
            table = tables.get(language, {})
            unknown += [f"{language}.{key}" for key in table if key not in builtin]
            if table:
                missing += [f"{language}.{key}" for key in builtin if key not in table]
            else:
                missing.append(f"the {language} section")
        if unknown:
            self.warn_once(f"ignoring texts the bot never uses (a typo?): {', '.join(unknown)}")
        if missing:
            self.warn_once(f"has no {', '.join(missing)}: using the built-in texts there")
        log.info("texts loaded from %s", self._file.path)

    def texts(self, language: str) -> Texts:
        self._load()
        chain = [self._tables.get(language, {}), self._builtin.get(language, {})]
        if language != DEFAULT_LANGUAGE:
            chain += [self._tables.get(DEFAULT_LANGUAGE, {}), self._builtin[DEFAULT_LANGUAGE]]
        return Texts(language, chain, self)

"""The texts file: a bad save keeps the last good texts, a missing text comes from the built-in ones."""

import itertools
import logging
import os
from pathlib import Path

import pytest
import yaml

from butler_bot.prompt import SystemPrompt
from butler_bot.texts import LANGUAGES, SHIPPED_TEXTS, TextBook, WatchedFile

_mtimes = itertools.count(1_700_000_000)


def save(path: Path, text: str) -> None:
    """Write like an editor, with a new mtime each time (a fast test would otherwise save twice in one tick)."""
    path.write_text(text, encoding="utf-8")
    stamp = next(_mtimes)
    os.utime(path, (stamp, stamp))


@pytest.fixture
def texts_file(tmp_path: Path) -> Path:
    path = tmp_path / "texts.yaml"
    save(path, SHIPPED_TEXTS.read_text(encoding="utf-8").replace("Hello, {name}!", "Ahoy, {name}!"))
    return path


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_shipped_texts_have_every_text_in_every_language() -> None:
    tables = yaml.safe_load(SHIPPED_TEXTS.read_text(encoding="utf-8"))
    keys = {language: set(tables[language]) for language in LANGUAGES}
    assert keys["en"] == keys["ru"], f"expected the same texts in en and ru; only in one: {keys['en'] ^ keys['ru']}"


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ("", "is empty"),
        ("- start\n- help\n", "got a list"),
        ("en: [hello]\n", "expected 'en' to map text names to texts, got a list"),
        ("en:\n  start: 3\n", "expected en.start to be a text, got a int"),
        ("de:\n  start: Hallo\n", "unknown language 'de'"),
        ("en:\n  start: 'unterminated\n", "while scanning a quoted scalar"),
    ],
    ids=["empty", "list", "section-list", "not-text", "unknown-language", "does-not-parse"],
)
def test_a_bad_save_keeps_the_last_good_texts_and_is_logged_once(
    texts_file: Path, caplog: pytest.LogCaptureFixture, bad: str, complaint: str
) -> None:
    book = TextBook(texts_file)
    assert book.texts("en")("start", name="Ada").startswith("Ahoy, Ada!"), "expected the file's own text at first"

    save(texts_file, bad)
    with caplog.at_level(logging.WARNING):
        seen = [book.texts("en")("start", name="Ada") for _ in range(3)]

    assert all(text.startswith("Ahoy, Ada!") for text in seen), f"expected the last good 'Ahoy' text, saw {seen}"
    logged = warnings(caplog)
    assert len(logged) == 1, f"expected one warning for the bad save, saw {logged}"
    assert str(texts_file) in logged[0] and complaint in logged[0] and "keeping the last" in logged[0], (
        f"expected the warning to name the file, say {complaint!r} and that the last texts stay; saw {logged[0]!r}"
    )


def test_a_fixed_save_is_used_again(texts_file: Path) -> None:
    book = TextBook(texts_file)
    save(texts_file, "")
    book.texts("en")
    save(texts_file, "en:\n  start: Howdy, {name}!\n")
    assert book.texts("en")("start", name="Ada") == "Howdy, Ada!", "expected the fixed file's text"


def test_a_missing_text_or_language_comes_from_the_built_in_texts(
    texts_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save(texts_file, "en:\n  start: Howdy, {name}!\n")
    with caplog.at_level(logging.WARNING):
        book = TextBook(texts_file)
        en, ru = book.texts("en"), book.texts("ru")
        seen = [en("start", name="Ada"), en("tasks_empty"), ru("tasks_empty"), en("tasks_empty")]
    assert seen == ["Howdy, Ada!", "You have no open tasks.", "Открытых задач нет.", "You have no open tasks."], (
        f"expected the file's start and the built-in tasks_empty in each language, saw {seen}"
    )
    logged = warnings(caplog)
    assert len(logged) == 1 and "en.help" in logged[0] and "the ru section" in logged[0], (
        f"expected one warning naming what the file lacks, saw {logged}"
    )


@pytest.mark.parametrize("content", [b"", b"\xff\xfe not UTF-8", None], ids=["empty", "not-utf8", "missing"])
def test_a_file_bad_from_the_start_gives_the_built_in_texts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None
) -> None:
    path = tmp_path / "texts.yaml"
    if content is not None:
        path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        book = TextBook(path)
    assert book.texts("en")("reset_done").startswith("Done: I forgot"), "expected the built-in reset_done"
    assert any("built-in texts" in message for message in warnings(caplog)), (
        f"expected a warning that the built-in texts are used, saw {warnings(caplog)}"
    )


def test_a_deleted_file_keeps_the_texts(texts_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    book = TextBook(texts_file)
    texts_file.unlink()
    with caplog.at_level(logging.WARNING):
        seen = [book.texts("en")("start", name="Ada") for _ in range(2)]
    assert all(text.startswith("Ahoy") for text in seen), f"expected the texts read before, saw {seen}"
    assert len(warnings(caplog)) == 1, f"expected one warning that the file cannot be read, saw {warnings(caplog)}"


def test_a_text_that_cannot_be_filled_in_falls_back_to_the_built_in_one(
    texts_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save(texts_file, "en:\n  reminder: '⏰ {txt}'\n")
    book = TextBook(texts_file)
    caplog.clear()  # the warning that the file lacks most texts
    with caplog.at_level(logging.WARNING):
        seen = [book.texts("en")("reminder", text="stretch") for _ in range(2)]
    assert seen == ["⏰ Reminder: stretch"] * 2, f"expected the built-in reminder text, saw {seen}"
    logged = warnings(caplog)
    assert len(logged) == 1 and "en.reminder" in logged[0], f"expected one warning naming en.reminder, saw {logged}"


def test_broken_built_in_texts_stop_the_start_with_a_sentence(tmp_path: Path, texts_file: Path) -> None:
    builtin = tmp_path / "builtin.yaml"
    save(builtin, "en:\n  start: Hi\n")
    with pytest.raises(ValueError, match=r"built-in texts .* are broken.*no section for ru"):
        TextBook(texts_file, builtin=builtin)


def test_the_prompt_file_saved_empty_or_removed_keeps_its_last_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prompt.md"
    save(path, "You are a butler. Today is $date.")
    prompt = SystemPrompt(WatchedFile(path))
    assert prompt.render(timezone="UTC", language="en").startswith("You are a butler."), "expected the file's prompt"
    with caplog.at_level(logging.WARNING):
        save(path, "")
        seen = [prompt.render(timezone="UTC", language="en") for _ in range(2)]
        path.unlink()
        seen += [prompt.render(timezone="UTC", language="en") for _ in range(2)]
    assert all(text.startswith("You are a butler.") for text in seen), f"expected the last prompt to stay, saw {seen}"
    logged = warnings(caplog)
    assert len(logged) == 2 and "is empty" in logged[0] and "cannot be read" in logged[1], (
        f"expected one warning for the empty save and one for the removed file, saw {logged}"
    )
    save(path, "You are a valet.")
    assert prompt.render(timezone="UTC", language="en") == "You are a valet.", "expected the new prompt once saved"

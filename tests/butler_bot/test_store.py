"""The bot's store keeps the last N turns per chat and the delivered reminders, across restarts."""

import logging
from pathlib import Path

import pytest

from butler_bot.store import BotStore


def turn(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


def test_keeps_the_last_turns_per_chat_across_a_reopen(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    for n in range(5):
        store.add_turn(1, turn(n))
    store.add_turn(2, turn(99))
    store.close()
    reopened = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    assert reopened.history(1) == turn(3) + turn(4)
    assert reopened.history(2) == turn(99)
    reopened.clear_history(1)
    assert reopened.history(1) == [] and reopened.history(2) == turn(99)


def test_delivered_reminders_and_languages_survive_a_reopen(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    store.mark_delivered(7)
    store.set_language(5, "ru")
    store.set_language(5, "en")
    store.close()
    reopened = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    assert reopened.was_delivered(7) and not reopened.was_delivered(8)
    assert reopened.language(5) == "en" and reopened.language(6) is None


def test_an_unwritable_path_falls_back_to_memory_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR):
        store = BotStore.open(blocker / "bot.sqlite3", history_turns=2)
    assert not store.persistent
    assert "kept in memory only" in caplog.text and "/data" in caplog.text
    store.add_turn(1, turn(1))
    assert store.history(1) == turn(1)

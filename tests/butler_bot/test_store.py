"""The bot's store keeps the last N turns per chat and the delivered reminders, across restarts."""

import itertools
import logging
import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest

from butler_bot.store import BotStore, DeliveryRecord


def turn(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


def test_keeps_the_last_turns_per_chat_across_a_reopen(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=6)
    for n in range(10):
        store.add_turn(1, turn(n))
    store.add_turn(2, turn(99))
    store.close()
    reopened = BotStore.open(tmp_path / "bot.sqlite3", history_turns=6)
    assert reopened.turns(1) == [turn(6), turn(7), turn(8), turn(9)]
    assert reopened.turns(2) == [turn(99)]
    reopened.clear_history(1)
    assert reopened.turns(1) == [] and reopened.turns(2) == [turn(99)]


def test_history_is_cut_in_blocks_so_its_start_holds_for_several_turns(tmp_path: Path) -> None:
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=6)
    firsts = []
    for n in range(20):
        store.add_turn(1, turn(n))
        firsts.append(store.turns(1)[0])
        assert len(store.turns(1)) <= 6, f"expected at most 6 turns kept, saw {len(store.turns(1))}"
    changes = sum(1 for before, after in itertools.pairwise(firsts) if before != after)
    assert changes <= 20 // 3, f"expected the oldest kept turn to change once per block, saw {changes} changes"
    store.keep_newest_turns(1, 2)
    assert store.turns(1) == [turn(18), turn(19)]


def test_handled_reminders_and_languages_survive_a_reopen(tmp_path: Path) -> None:
    sent, given_up, unknown = uuid4(), uuid4(), uuid4()
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    store.record_delivery(sent, DeliveryRecord())
    store.record_delivery(given_up, DeliveryRecord(failure="TelegramEntityTooLarge: too large"))
    store.set_language(5, "ru")
    store.set_language(5, "en")
    store.close()
    reopened = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    seen = [reopened.delivery(key) for key in (sent, given_up, unknown)]
    assert seen == [DeliveryRecord(), DeliveryRecord(failure="TelegramEntityTooLarge: too large"), None], seen
    assert reopened.language(5) == "en" and reopened.language(6) is None


def test_bare_reminder_ids_from_an_older_store_are_forgotten(tmp_path: Path) -> None:
    """An id may name another reminder after the MCP database is reset: only delivery keys are kept."""
    with sqlite3.connect(tmp_path / "bot.sqlite3") as old:
        old.execute("CREATE TABLE delivered_reminders (reminder_id INTEGER PRIMARY KEY, delivered_at TEXT)")
        old.execute("INSERT INTO delivered_reminders VALUES (1, '2026-11-30 10:00:00')")
    store = BotStore.open(tmp_path / "bot.sqlite3", history_turns=2)
    tables = {name for (name,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "delivered_reminders" not in tables and "reminder_deliveries" in tables, tables


def test_an_unwritable_path_falls_back_to_memory_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR):
        store = BotStore.open(blocker / "bot.sqlite3", history_turns=2)
    assert not store.persistent
    assert "kept in memory only" in caplog.text and "/data" in caplog.text
    store.add_turn(1, turn(1))
    assert store.turns(1) == [turn(1)]

"""What the bot keeps across restarts: each chat's recent turns, handled reminders, each user's language,
and who may use the bot when ALLOWED_USER_IDS is empty (the paired owner and their guests).

One SQLite file on the bot's data volume. The statements are tiny and local (WAL, no fsync per commit), so
they run on the event loop rather than paying a thread hop per message.
"""

import json
import logging
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id INTEGER NOT NULL,
    messages TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS turns_by_chat ON turns (chat_id, id);
-- Keyed by the server's delivery key: a bare id is reused after the MCP database is reset, a key never is.
DROP TABLE IF EXISTS delivered_reminders;
CREATE TABLE IF NOT EXISTS reminder_deliveries (
    delivery_key TEXT PRIMARY KEY,
    failure TEXT,
    handled_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS user_languages (
    user_id INTEGER PRIMARY KEY,
    language TEXT NOT NULL
);
-- Who may use the bot when ALLOWED_USER_IDS is empty: the owner (paired with the code) and whom they let in.
CREATE TABLE IF NOT EXISTS allowed_users (
    user_id INTEGER PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('owner', 'guest')),
    added_by INTEGER,
    added_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS one_owner ON allowed_users (role) WHERE role = 'owner';
-- The one-time pairing code while the bot has no owner; `make pair` reads it from here.
CREATE TABLE IF NOT EXISTS pairing_code (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    code TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""

# Handled reminders older than this many rows are dropped; the MCP server never re-sends reported ones.
KEEP_DELIVERIES = 10_000


@dataclass(frozen=True)
class DeliveryRecord:
    """A reminder the bot is done with: sent, or given up on (`failure` says why)."""

    failure: str | None = None


@dataclass
class BotStore:
    db: sqlite3.Connection
    history_turns: int
    persistent: bool

    @classmethod
    def open(cls, path: Path, history_turns: int) -> "BotStore":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            persistent = True
        except (OSError, sqlite3.Error) as exc:
            log.error(
                "cannot open %s (%s): chat history and delivered reminders are kept in memory only and are lost "
                "on restart; mount a writable volume there (the stack's butler-bot-data volume at /data)",
                path,
                exc,
            )
            db = sqlite3.connect(":memory:", isolation_level=None)
            persistent = False
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return cls(db=db, history_turns=history_turns, persistent=persistent)

    def close(self) -> None:
        self.db.close()

    def turns(self, chat_id: int) -> list[list[dict[str, Any]]]:
        """The chat's kept turns, oldest first, each as its chat messages."""
        rows = self.db.execute("SELECT messages FROM turns WHERE chat_id = ? ORDER BY id", (chat_id,)).fetchall()
        return [json.loads(messages) for (messages,) in rows]

    def add_turn(self, chat_id: int, messages: list[dict[str, Any]]) -> bool:
        """Keep one finished turn (the user's message and the answer); past `history_turns`, the oldest third goes.

        Cutting a block at once keeps the earlier turns, the prompt's prefix, the same for several messages.
        False when the disk refused the write (full, read-only): the transaction is rolled back, nothing is lost.
        """
        if self.history_turns == 0:
            return True
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute(
                    "INSERT INTO turns (chat_id, messages) VALUES (?, ?)",
                    (chat_id, json.dumps(messages, ensure_ascii=False)),
                )
                (count,) = self.db.execute("SELECT count(*) FROM turns WHERE chat_id = ?", (chat_id,)).fetchone()
                if count > self.history_turns:
                    self._keep_newest(chat_id, self.history_turns - math.ceil(self.history_turns / 3))
        except sqlite3.OperationalError as exc:
            log.error("chat %s: cannot save the conversation (disk full or read-only?): %s", chat_id, exc)
            return False
        return True

    def keep_newest_turns(self, chat_id: int, keep: int) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._keep_newest(chat_id, keep)

    def _keep_newest(self, chat_id: int, keep: int) -> None:
        self.db.execute(
            "DELETE FROM turns WHERE chat_id = ? AND id NOT IN "
            "(SELECT id FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?)",
            (chat_id, chat_id, keep),
        )

    def clear_history(self, chat_id: int) -> None:
        self.db.execute("DELETE FROM turns WHERE chat_id = ?", (chat_id,))

    def delivery(self, delivery_key: UUID) -> DeliveryRecord | None:
        """What became of the reminder with this key, or None while it is still to be delivered."""
        row = self.db.execute(
            "SELECT failure FROM reminder_deliveries WHERE delivery_key = ?", (str(delivery_key),)
        ).fetchone()
        return DeliveryRecord(failure=row[0]) if row else None

    def record_delivery(self, delivery_key: UUID, record: DeliveryRecord) -> None:
        """A write the disk refuses (full, read-only) is logged: the report to the server is then the only record."""
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute(
                    "INSERT OR IGNORE INTO reminder_deliveries (delivery_key, failure) VALUES (?, ?)",
                    (str(delivery_key), record.failure),
                )
                self.db.execute(
                    "DELETE FROM reminder_deliveries WHERE rowid NOT IN "
                    "(SELECT rowid FROM reminder_deliveries ORDER BY rowid DESC LIMIT ?)",
                    (KEEP_DELIVERIES,),
                )
        except sqlite3.OperationalError as exc:
            log.error(
                "reminder %s: cannot record it as done (disk full or read-only?): %s; reporting it to the server "
                "anyway, and should that report be lost, it is sent again",
                delivery_key,
                exc,
            )

    def language(self, user_id: int) -> str | None:
        row = self.db.execute("SELECT language FROM user_languages WHERE user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def set_language(self, user_id: int, language: str) -> None:
        self.db.execute(
            "INSERT INTO user_languages (user_id, language) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET language = excluded.language",
            (user_id, language),
        )

    def allowed_users(self) -> dict[int, str]:
        """The users let in without ALLOWED_USER_IDS, each with their role: "owner" or "guest"."""
        return dict(self.db.execute("SELECT user_id, role FROM allowed_users ORDER BY added_at, user_id").fetchall())

    def is_allowed(self, user_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM allowed_users WHERE user_id = ?", (user_id,)).fetchone() is not None

    def owner(self) -> int | None:
        row = self.db.execute("SELECT user_id FROM allowed_users WHERE role = 'owner'").fetchone()
        return row[0] if row else None

    def allow_user(self, user_id: int, added_by: int) -> bool:
        """Let a guest in; False when they were in already."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO allowed_users (user_id, role, added_by) VALUES (?, 'guest', ?)", (user_id, added_by)
        )
        return cursor.rowcount == 1

    def deny_user(self, user_id: int) -> bool:
        """Take a guest out (never the owner); False when they were not in."""
        cursor = self.db.execute("DELETE FROM allowed_users WHERE user_id = ? AND role = 'guest'", (user_id,))
        return cursor.rowcount == 1

    def pairing_code(self) -> str | None:
        row = self.db.execute("SELECT code FROM pairing_code").fetchone()
        return row[0] if row else None

    def set_pairing_code(self, code: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO pairing_code (id, code) VALUES (1, ?)", (code,))

    def pair_owner(self, user_id: int) -> bool:
        """Make `user_id` the owner and use the code up, in one transaction; False when there is an owner already."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM allowed_users WHERE role = 'owner'").fetchone():
                return False
            self.db.execute(
                "INSERT OR REPLACE INTO allowed_users (user_id, role, added_by) VALUES (?, 'owner', ?)",
                (user_id, user_id),
            )
            self.db.execute("DELETE FROM pairing_code")
        return True

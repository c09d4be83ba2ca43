"""A database whose disk takes no more writes: the write is refused with one sentence and one log line, rolled back
whole, and what was stored before stays as it was."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from mcp_server.db import Database, StorageRefused
from mcp_server.models import Task


def task(title: str) -> Task:
    return Task(user_id=1, title=title, search_text=title.casefold())


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'butler.db'}")
    await database.migrate()
    async with database.session() as session:
        session.add(task("stored before"))
    yield database
    await database.close()


async def refuse_writes(db: Database, pragma: str) -> None:
    """From now on every connection runs `pragma`: SQLite's own way to a full (or read-only) database."""
    await db.engine.dispose()

    def on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.cursor().execute(pragma)

    event.listen(db.engine.sync_engine, "connect", on_connect)


async def titles(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(Task.title).order_by(Task.id)))


@pytest.mark.parametrize(
    ("pragma", "state"),
    [
        # The file may not grow (SQLite keeps the limit at its size): SQLITE_FULL, as on a full volume.
        ("PRAGMA max_page_count = 1", "full"),
        ("PRAGMA query_only = ON", "read-only"),
    ],
)
async def test_a_refused_write_is_one_sentence_and_one_log_line_and_nothing_half_written(
    db: Database, pragma: str, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    await refuse_writes(db, pragma)
    caplog.set_level(logging.INFO, logger="mcp_server.db")
    with pytest.raises(StorageRefused) as refused:
        async with db.session() as session:
            session.add(task("first of two"))
            await session.flush()
            session.add(task("second of two" + "x" * 20_000))
    expected = f"The butler's storage is {state}, so nothing was saved; everything saved before is safe."
    assert str(refused.value).startswith(expected), f"expected {expected!r}; saw {str(refused.value)!r}"
    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert len(lines) == 1 and lines[0][0] == "ERROR" and f"is {state}: a write was refused" in lines[0][1], (
        f"expected one ERROR line saying the database is {state}; saw {lines}"
    )
    assert caplog.records[0].exc_info is None, "expected no traceback in the log"
    assert await titles(db) == ["stored before"], f"expected only the task stored before; saw {await titles(db)}"


async def test_other_database_errors_are_not_called_a_full_disk(db: Database) -> None:
    with pytest.raises(Exception) as raised:
        async with db.session() as session:
            await session.execute(select(func.no_such_function()))
    assert not isinstance(raised.value, StorageRefused), f"expected the error as it was; saw {raised.value!r}"

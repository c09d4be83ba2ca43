"""The database connection: an async SQLAlchemy engine for SQLite (default) or PostgreSQL, and its migrations."""

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger(__name__)

# SQLite's primary result codes for a disk that takes no more writes (https://sqlite.org/rescode.html).
REFUSED_WRITES = {sqlite3.SQLITE_FULL: "full", sqlite3.SQLITE_READONLY: "read-only"}


class StorageRefused(ToolError):
    """The database's disk is full or read-only: the write was rolled back, everything stored before is intact.

    A ToolError, so a tool call answers the model with the sentence; the HTTP routes answer 503 (web.py).
    """

    def __init__(self, state: str) -> None:
        super().__init__(
            f"The butler's storage is {state}, so nothing was saved; everything saved before is safe. "
            "Tell the user the change was not made and to try again later."
        )


def refused_write(exc: OperationalError) -> str | None:
    """'full' or 'read-only' when SQLite refused the write for lack of a writable disk, else None."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return None if code is None else REFUSED_WRITES.get(code & 0xFF)


def _tune_sqlite(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer. NORMAL sync is durable across app crashes in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Writers queue for the lock instead of failing at once with "database is locked".
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """One engine per process; `session()` is a unit of work that commits on success."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.is_postgres:
            self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=True)
        else:
            # Each aiosqlite connection is a thread: past a few, they only contend for the GIL and the one writer.
            self.engine = create_async_engine(self.url, pool_size=4, max_overflow=0)
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            if (state := refused_write(exc)) is None:
                raise
            # One line, no traceback: the operator needs the reason, and the rollback already happened.
            log.error("database %s is %s: a write was refused and rolled back (%s)", self.safe_url, state, exc.orig)
            raise StorageRefused(state) from None

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already)."""
        if not self.is_postgres:
            directory = Path(self.url.database or "").parent
            # SQLite says only "unable to open database file" there: it cannot even read a WAL database.
            if os.statvfs(directory).f_flag & os.ST_RDONLY:
                raise OSError(f"{directory} is mounted read-only; mount the data volume writable (without :ro)")
        async with self.engine.begin() as connection:
            before, after = await connection.run_sync(upgrade_to_head)
        if before == after:
            log.info("database %s is at schema revision %s", self.safe_url, after)
        else:
            log.info("database %s migrated from schema revision %s to %s", self.safe_url, before, after)

    async def close(self) -> None:
        await self.engine.dispose()


def upgrade_to_head(connection: Connection) -> tuple[str | None, str | None]:
    """Apply every pending migration; returns the schema revisions before and after."""
    # Alembic's own INFO lines repeat on every start; Database.migrate logs one line instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Imported here: Alembic is needed once per start, not on every import of the app.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    before = MigrationContext.configure(connection).get_current_revision()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return before, MigrationContext.configure(connection).get_current_revision()

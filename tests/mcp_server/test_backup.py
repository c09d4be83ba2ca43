"""python -m mcp_server.backup against the real server: a backup restored elsewhere serves the same data, an older
schema is brought forward on start, and what cannot be restored is refused with the database untouched."""

import io
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from mcp_server.backup import create, restore
from mcp_server.db import MIGRATIONS_DIR
from shared.backup import BackupError, sha256_of
from tests.mcp_server.conftest import mcp_client, serve, server_settings

USER = 909_001


def bot_store(tmp_path: Path) -> io.BytesIO:
    """A bot store as `python -m butler_bot.backup snapshot` sends it."""
    path = tmp_path / "bot-store.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE user_languages (user_id INTEGER PRIMARY KEY, language TEXT NOT NULL)")
        db.execute("INSERT INTO user_languages VALUES (?, 'ru')", (USER,))
    return io.BytesIO(path.read_bytes())


def scratch(tmp_path: Path, name: str) -> Path:
    """A fresh working directory, as the command's own temporary one."""
    (tmp_path / name).mkdir()
    return tmp_path / name


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def head() -> str:
    return sorted(path.name.split("_")[0] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))[-1]


async def test_a_backup_of_the_running_server_restored_into_a_new_one_serves_the_same_tasks(tmp_path: Path) -> None:
    source = server_settings(sqlite_url(tmp_path / "source.db"))
    with serve(source) as running:
        async with mcp_client(running.mcp_url, user_id=USER) as client:
            added = await client.call_tool("tasks_add", {"title": "Renew the passport"})
            assert not added.is_error, added.content
        archive = io.BytesIO()
        manifest = create(source, bot_store(tmp_path), archive, scratch(tmp_path, "scratch-create"))
    assert manifest.schema_revision == head(), f"expected the manifest to name revision {head()}, got {manifest}"

    target = server_settings(sqlite_url(scratch(tmp_path, "target") / "butler.db"))
    restore(target, io.BytesIO(archive.getvalue()), scratch(tmp_path, "scratch-restore"))
    with serve(target) as running:
        async with mcp_client(running.mcp_url, user_id=USER) as client:
            listed = await client.call_tool("tasks_list", {})
    titles = [task["title"] for task in (listed.structured_content or {}).get("tasks", [])]
    assert titles == ["Renew the passport"], f"expected the restored server to list the backed-up task, got {titles}"


def test_a_backup_of_an_older_schema_is_brought_forward_when_the_server_starts(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    archive = io.BytesIO()
    create(server_settings(sqlite_url(old)), bot_store(tmp_path), archive, scratch(tmp_path, "scratch-create"))

    target = server_settings(sqlite_url(tmp_path / "butler.db"))
    restore(target, io.BytesIO(archive.getvalue()), scratch(tmp_path, "scratch-restore"))
    assert revision(tmp_path / "butler.db") == "0001", "expected the restored file at the backup's revision"
    with serve(target):
        pass
    assert revision(tmp_path / "butler.db") == head(), f"expected the server's start to migrate it to {head()}"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A database in use, whose bytes a refused restore must leave as they were."""
    path = tmp_path / "live" / "butler.db"
    path.parent.mkdir()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES ('0001')")
    return path


def archive_at_revision(tmp_path: Path, name: str) -> bytes:
    path = tmp_path / f"{name}.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (name,))
    archive = io.BytesIO()
    create(server_settings(sqlite_url(path)), bot_store(tmp_path), archive, scratch(tmp_path, f"scratch-{name}"))
    return archive.getvalue()


def test_a_backup_from_a_newer_release_is_refused_and_changes_nothing(tmp_path: Path, database: Path) -> None:
    before = sha256_of(database)
    with pytest.raises(BackupError, match="schema revision 9999_future, which this release does not know"):
        restore(
            server_settings(sqlite_url(database)), io.BytesIO(archive_at_revision(tmp_path, "9999_future")), tmp_path
        )
    assert sha256_of(database) == before, "expected the database untouched after a refused restore"


def test_a_truncated_archive_is_refused_by_the_command_and_changes_nothing(tmp_path: Path, database: Path) -> None:
    archive = archive_at_revision(tmp_path, "0001")
    before = sha256_of(database)
    env = {"MCP_AUTH_TOKEN": "unit-test-token-0123456789", "BUTLER_ENV": "development"}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server.backup", "restore"],
        input=archive[: len(archive) // 2],
        capture_output=True,
        env={**env, "DATABASE_URL": sqlite_url(database), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "truncated" in stderr and "nothing was changed" in stderr, (
        f"expected exit 1 and a sentence about a truncated archive; got {done.returncode}: {stderr}"
    )
    assert sha256_of(database) == before, "expected the database untouched after a refused restore"


def test_a_postgresql_backup_without_pg_dump_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = server_settings("postgresql://butler:secret@127.0.0.1:9/butler")
    with pytest.raises(BackupError, match=r"pg_dump is not installed.*postgresql-client"):
        create(settings, bot_store(tmp_path), io.BytesIO(), tmp_path)

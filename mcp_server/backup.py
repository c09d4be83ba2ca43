"""Backups of the MCP database, and the whole stack's archive (`make backup`, `make restore FILE=...`).

Run inside the mcp-server container, archives on stdout and stdin (the root filesystem is read-only; the
snapshot is staged in the /tmp tmpfs):

    python -m mcp_server.backup create < bot-store.sqlite3 > butler.tar.gz
        The bot's store (from `python -m butler_bot.backup snapshot`) and a snapshot of this database: SQLite's
        online backup API, or pg_dump for PostgreSQL. Safe while the server runs.
    python -m mcp_server.backup verify < butler.tar.gz
        Checks the archive whole (manifest, sizes, sha256, SQLite integrity, a schema revision this release knows).
    python -m mcp_server.backup restore < butler.tar.gz
        Checks it the same way, then replaces this database; the server must be stopped. Its migrations bring an
        older schema forward on the next start.
"""

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

from alembic.script import ScriptDirectory
from sqlalchemy import URL, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mcp_server.db import MIGRATIONS_DIR, Database
from mcp_server.settings import SQLITE_PREFIX, McpServerSettings
from shared.backup import (
    BOT_STORE,
    MCP_PGDUMP,
    MCP_SQLITE,
    BackupError,
    Manifest,
    check_sqlite,
    install_sqlite,
    snapshot_sqlite,
    unpack_archive,
    write_archive,
)
from shared.settings import load_settings

INSTALL_PG_CLIENT = (
    "install PostgreSQL's client tools in the mcp-server image (Debian: apt-get install postgresql-client) "
    "or run it where they are"
)


def sqlite_revision(path: Path) -> str | None:
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def postgres_revision(url: str) -> str | None:
    async def read() -> str | None:
        db = Database(url)
        try:
            async with db.engine.connect() as connection:
                return await connection.scalar(text("SELECT version_num FROM alembic_version"))
        finally:
            await db.close()

    try:
        return asyncio.run(read())
    except (OSError, SQLAlchemyError) as exc:
        raise BackupError(f"cannot read the PostgreSQL database's schema revision: {exc}") from None


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The URL as pg_dump takes it, with the password in the environment instead of the command line."""
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = {**os.environ, "PGPASSWORD": url.password} if url.password else dict(os.environ)
    return plain, env


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"DATABASE_URL is PostgreSQL but {name} is not installed: {INSTALL_PG_CLIENT}")
    return path


def run_pg_tool(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {done.stderr.strip() or f'exit {done.returncode}'}")


def known_revision(revision: str | None) -> None:
    """Refuse a backup whose schema this release's migrations cannot bring forward (it came from a newer one)."""
    if revision is None:
        return
    if revision not in {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}:
        raise BackupError(
            f"the backup's database is at schema revision {revision}, which this release does not know: "
            "it comes from a newer Butler; upgrade before restoring it"
        )


def create(settings: McpServerSettings, bot_store: BinaryIO, out: BinaryIO, scratch: Path) -> Manifest:
    store = scratch / "bot-store.sqlite3"
    with store.open("wb") as file:
        shutil.copyfileobj(bot_store, file)
    check_sqlite(store, "the bot's store (from python -m butler_bot.backup snapshot)")
    url = make_url(settings.database_url.get_secret_value())
    if url.get_backend_name() == "postgresql":
        dump, (dsn, env), pg_dump = scratch / "butler.pgdump", libpq(url), pg_tool("pg_dump")
        revision = postgres_revision(settings.database_url.get_secret_value())
        run_pg_tool([pg_dump, "--format=custom", "--no-owner", f"--file={dump}", dsn], env)
        return write_archive(
            out, {MCP_PGDUMP: dump, BOT_STORE: store}, mcp_database="postgresql", schema_revision=revision
        )
    snapshot = scratch / "butler.db"
    snapshot_sqlite(sqlite_path(settings), snapshot)
    return write_archive(
        out, {MCP_SQLITE: snapshot, BOT_STORE: store}, mcp_database="sqlite", schema_revision=sqlite_revision(snapshot)
    )


def sqlite_path(settings: McpServerSettings) -> Path:
    return Path(settings.database_url.get_secret_value().removeprefix(SQLITE_PREFIX))


def verify(archive: BinaryIO, scratch: Path) -> Manifest:
    manifest = unpack_archive(archive, scratch)
    known_revision(manifest.schema_revision)
    return manifest


def restore(settings: McpServerSettings, archive: BinaryIO, scratch: Path) -> Manifest:
    manifest = verify(archive, scratch)
    url = make_url(settings.database_url.get_secret_value())
    ours = "postgresql" if url.get_backend_name() == "postgresql" else "sqlite"
    if manifest.mcp_database != ours:
        raise BackupError(
            f"the backup holds a {manifest.mcp_database} database and this server uses {ours}: "
            "point DATABASE_URL at the kind of database the backup came from"
        )
    if ours == "postgresql":
        dsn, env = libpq(url)
        restore_options = ["--clean", "--if-exists", "--no-owner", "--single-transaction", f"--dbname={dsn}"]
        run_pg_tool([pg_tool("pg_restore"), *restore_options, str(scratch / MCP_PGDUMP)], env)
    else:
        install_sqlite(scratch / MCP_SQLITE, sqlite_path(settings))
    return manifest


def describe(manifest: Manifest) -> str:
    files = ", ".join(f"{entry.path} ({entry.size:,} bytes)" for entry in manifest.files)
    return (
        f"Butler {manifest.butler_version} backup of {manifest.created_at}, {manifest.mcp_database} "
        f"schema revision {manifest.schema_revision or 'none'}: {files}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcp_server.backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="archive this database and the bot's store (stdin) to stdout")
    commands.add_parser("verify", help="check an archive from stdin")
    commands.add_parser("restore", help="check an archive from stdin and put its database in place")
    args = parser.parse_args(argv)
    settings = load_settings(McpServerSettings, "mcp-server")
    # /tmp is the container's tmpfs: the only writable place besides the data volume.
    with tempfile.TemporaryDirectory(prefix="butler-backup-") as directory:
        scratch = Path(directory)
        try:
            if args.command == "create":
                if sys.stdout.isatty():
                    raise BackupError("the archive goes to stdout: redirect it to a file")
                print(
                    f"backup written: {describe(create(settings, sys.stdin.buffer, sys.stdout.buffer, scratch))}",
                    file=sys.stderr,
                )
            elif args.command == "verify":
                print(f"backup is sound: {describe(verify(sys.stdin.buffer, scratch))}", file=sys.stderr)
            else:
                print(
                    f"MCP database restored from {describe(restore(settings, sys.stdin.buffer, scratch))}",
                    file=sys.stderr,
                )
        except BackupError as exc:
            outcome = "no backup written" if args.command == "create" else "nothing was changed"
            print(f"mcp-server backup: {exc}; {outcome}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

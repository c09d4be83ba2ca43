"""Backup archives of the stack's data, the same for both services: SQLite snapshots and a checked tar.gz.

A snapshot is taken with SQLite's online backup API, so it is a consistent copy while the service writes.
An archive is a gzipped tar of a manifest (first) and the files it lists, each with its size and sha256.
Unpacking checks all of that, and that each SQLite file passes `PRAGMA integrity_check`, before anything
is put in place: a truncated or altered archive is refused with one sentence and changes nothing.
"""

import gzip
import hashlib
import io
import shutil
import sqlite3
import tarfile
import zlib
from collections.abc import Mapping
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, Self

from pydantic import BaseModel, ValidationError, model_validator

from shared.version import VERSION

MANIFEST = "manifest.json"
# The only members an archive may hold: fixed names, so no member can point outside the directory it is unpacked to.
MCP_SQLITE = "mcp-server/butler.db"
MCP_PGDUMP = "mcp-server/butler.pgdump"
BOT_STORE = "butler-bot/butler_bot.sqlite3"
Member = Literal["mcp-server/butler.db", "mcp-server/butler.pgdump", "butler-bot/butler_bot.sqlite3"]
SQLITE_MEMBERS = (MCP_SQLITE, BOT_STORE)
# Seconds a snapshot waits for a lock (a checkpoint, a migration) before it gives up.
LOCK_TIMEOUT = 30.0
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is the sentence the operator reads."""


class ArchivedFile(BaseModel):
    path: Member
    size: int
    sha256: str


class Manifest(BaseModel):
    format: Literal[1] = 1
    created_at: str
    butler_version: str = VERSION
    sqlite_version: str = sqlite3.sqlite_version
    mcp_database: Literal["sqlite", "postgresql"]
    # The MCP database's alembic revision: a restore refuses one its migrations do not know (a newer release).
    schema_revision: str | None
    files: list[ArchivedFile]

    @model_validator(mode="after")
    def holds_both_services_data(self) -> Self:
        expected = {MCP_SQLITE if self.mcp_database == "sqlite" else MCP_PGDUMP, BOT_STORE}
        if sorted(entry.path for entry in self.files) != sorted(expected):
            raise ValueError(f"expected the files {', '.join(sorted(expected))}, each once")
        return self

    def file(self, path: str) -> ArchivedFile | None:
        return next((entry for entry in self.files if entry.path == path), None)


def utc_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sqlite(path: Path, what: str) -> None:
    """Refuse a file that is not a sound SQLite database."""
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a usable SQLite database: {exc}") from None
    if problems != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {'; '.join(problems[:3])}")


def snapshot_sqlite(source: Path, destination: Path) -> None:
    """Copy a live SQLite database with the online backup API: one step, so one consistent point in time."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}: is this the right volume, and has the service started?")
    try:
        # mode=rw: never create an empty database where the real one is missing.
        with (
            closing(sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=LOCK_TIMEOUT)) as live,
            closing(sqlite3.connect(destination)) as copy,
        ):
            live.backup(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot snapshot {source}: {exc}") from None
    check_sqlite(destination, f"the snapshot of {source}")


def write_archive(
    out: BinaryIO,
    files: Mapping[str, Path],
    *,
    mcp_database: Literal["sqlite", "postgresql"],
    schema_revision: str | None,
) -> Manifest:
    """Write a tar.gz of the manifest and `files` (archive member -> file on disk) to `out`."""
    manifest = Manifest(
        created_at=utc_stamp(),
        mcp_database=mcp_database,
        schema_revision=schema_revision,
        files=[
            ArchivedFile.model_validate({"path": name, "size": path.stat().st_size, "sha256": sha256_of(path)})
            for name, path in files.items()
        ],
    )
    body = manifest.model_dump_json(indent=2).encode()
    with tarfile.open(fileobj=out, mode="w|gz") as archive:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), int(datetime.now(UTC).timestamp()), 0o600
        archive.addfile(info, io.BytesIO(body))
        for name, path in files.items():
            info = archive.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as file:
                archive.addfile(info, file)
    return manifest


def unpack_archive(stream: BinaryIO, into: Path) -> Manifest:
    """Unpack an archive into `into` and check it whole; BackupError says what is wrong with it."""
    manifest: Manifest | None = None
    seen: set[str] = set()
    try:
        # gzip.GzipFile, not tarfile's own "r|gz": it checks the trailer's CRC and length once drained below.
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped, tarfile.open(fileobj=unzipped, mode="r|") as archive:
            for member in archive:
                if manifest is None:
                    manifest = _read_manifest(archive, member)
                    continue
                entry = manifest.file(member.name)
                if entry is None or not member.isfile() or member.name in seen:
                    raise BackupError(f"the archive holds {member.name!r}, which its manifest does not list")
                seen.add(member.name)
                source = archive.extractfile(member)
                assert source is not None  # a regular file always has a body
                target = into / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as file:
                    shutil.copyfileobj(source, file, CHUNK)
                if target.stat().st_size != entry.size or sha256_of(target) != entry.sha256:
                    raise BackupError(f"{entry.path} in the archive does not match its manifest (altered or damaged)")
            # The end-of-archive blocks, then the gzip trailer: a file cut short anywhere is refused.
            while unzipped.read(CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(f"the archive is truncated or damaged ({exc})") from None
    except OSError as exc:
        # gzip.BadGzipFile is an OSError (not a gzip stream at all), and so is a full /tmp.
        raise BackupError(f"the archive cannot be read or unpacked: {exc}") from None
    if manifest is None:
        raise BackupError("the archive is empty: it is not a Butler backup")
    if missing := [entry.path for entry in manifest.files if entry.path not in seen]:
        raise BackupError(f"the archive is truncated: {', '.join(missing)} listed in its manifest is missing")
    for name in SQLITE_MEMBERS:
        if name in seen:
            check_sqlite(into / name, f"{name} in the archive")
    return manifest


def _read_manifest(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Manifest:
    source = archive.extractfile(member) if member.name == MANIFEST else None
    if source is None:
        raise BackupError(f"the archive starts with {member.name!r}, not {MANIFEST}: it is not a Butler backup")
    try:
        return Manifest.model_validate_json(source.read())
    except ValidationError as exc:
        raise BackupError(f"the archive's {MANIFEST} is not one this version reads: {exc.errors()[0]['msg']}") from None


def install_sqlite(source: Path, target: Path) -> None:
    """Put a checked SQLite file in place of the database at `target`, whose service must be stopped."""
    staged = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, staged)
    # The old database's write-ahead log would be replayed onto the restored file and corrupt it.
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    staged.replace(target)

"""Backup archives: a snapshot taken under writes is whole and sound; a damaged archive is refused."""

import gzip
import io
import json
import re
import sqlite3
import subprocess
import sys
import tarfile
import threading
from contextlib import closing
from pathlib import Path

import pytest

from shared.backup import (
    BOT_STORE,
    MANIFEST,
    MCP_SQLITE,
    BackupError,
    install_sqlite,
    sha256_of,
    snapshot_sqlite,
    unpack_archive,
    write_archive,
)


def live_database(path: Path) -> None:
    """A database set up as the services keep theirs: WAL, NORMAL sync."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")


def rows(path: Path) -> set[int]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT id FROM rows")}


def integrity(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("PRAGMA integrity_check")]


def test_a_snapshot_taken_while_a_writer_inserts_is_sound_and_holds_every_acknowledged_row(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    live_database(source)
    acknowledged: list[int] = []
    started = threading.Event()
    stop = threading.Event()

    def write() -> None:
        with closing(sqlite3.connect(source, isolation_level=None, timeout=30)) as db:
            db.execute("PRAGMA synchronous=NORMAL")
            while not stop.is_set():
                # Big rows, so the writer fills pages and the WAL while the snapshot copies them.
                cursor = db.execute("INSERT INTO rows (body) VALUES (?)", ("x" * 3000,))
                acknowledged.append(cursor.lastrowid or 0)
                if len(acknowledged) == 200:
                    started.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert started.wait(60), "expected the writer to commit 200 rows within 60 s"
        snapshots = []
        for number in range(5):
            before = set(acknowledged)
            snapshot = tmp_path / f"snapshot-{number}.db"
            snapshot_sqlite(source, snapshot)
            snapshots.append((before, snapshot))
    finally:
        stop.set()
        writer.join(60)
    total = len(acknowledged)
    for before, snapshot in snapshots:
        assert integrity(snapshot) == ["ok"], (
            f"expected {snapshot.name} to pass integrity_check, saw {integrity(snapshot)}"
        )
        missing = before - rows(snapshot)
        assert not missing, f"expected every row committed before the snapshot in it; {len(missing)} missing"
    assert len(rows(snapshots[-1][1])) < total, (
        "expected the writer to go on during the snapshots (else this test shows nothing about concurrency)"
    )


def test_a_snapshot_of_a_missing_database_is_refused_and_creates_none(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="there is no database at"):
        snapshot_sqlite(tmp_path / "absent.db", tmp_path / "copy.db")
    assert not (tmp_path / "absent.db").exists(), "expected no empty database created where the real one is missing"


@pytest.fixture
def archive(tmp_path: Path) -> bytes:
    """An archive of two small databases, as `make backup` writes it."""
    for name in ("mcp.db", "bot.db"):
        live_database(tmp_path / name)
        with closing(sqlite3.connect(tmp_path / name)) as db, db:
            db.executemany("INSERT INTO rows (body) VALUES (?)", [(f"{name} row {n}",) for n in range(500)])
    out = io.BytesIO()
    write_archive(
        out,
        {MCP_SQLITE: tmp_path / "mcp.db", BOT_STORE: tmp_path / "bot.db"},
        mcp_database="sqlite",
        schema_revision="0002",
    )
    return out.getvalue()


def test_an_archive_unpacks_to_the_same_files_with_its_manifest(archive: bytes, tmp_path: Path) -> None:
    into = tmp_path / "unpacked"
    manifest = unpack_archive(io.BytesIO(archive), into)
    assert [entry.path for entry in manifest.files] == [MCP_SQLITE, BOT_STORE]
    assert manifest.schema_revision == "0002" and manifest.mcp_database == "sqlite"
    assert sha256_of(into / MCP_SQLITE) == sha256_of(tmp_path / "mcp.db"), "expected the database back byte for byte"
    assert len(rows(into / BOT_STORE)) == 500, "expected the bot's store back with its 500 rows"


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_archive_is_refused(archive: bytes, tmp_path: Path, keep: float) -> None:
    cut = archive[: int(len(archive) * keep)]
    with pytest.raises(BackupError, match=r"truncated|damaged"):
        unpack_archive(io.BytesIO(cut), tmp_path / "unpacked")


def rebuilt(archive: bytes, change: dict[str, bytes]) -> bytes:
    """The archive with some members' bodies replaced, re-packed as a valid tar.gz (its manifest untouched)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as original,
        tarfile.open(fileobj=out, mode="w:gz") as copy,
    ):
        for member in original.getmembers():
            body = change.get(member.name)
            if body is None:
                extracted = original.extractfile(member)
                assert extracted is not None
                body = extracted.read()
            member.size = len(body)
            copy.addfile(member, io.BytesIO(body))
    return out.getvalue()


def test_an_altered_member_is_refused(archive: bytes, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as original:
        extracted = original.extractfile(BOT_STORE)
        assert extracted is not None
        body = bytearray(extracted.read())
    body[-100] ^= 0xFF
    with pytest.raises(BackupError, match="does not match its manifest"):
        unpack_archive(io.BytesIO(rebuilt(archive, {BOT_STORE: bytes(body)})), tmp_path / "unpacked")


def test_a_member_the_manifest_does_not_list_is_refused(archive: bytes, tmp_path: Path) -> None:
    out = io.BytesIO(rebuilt(archive, {}))
    # One more member, outside the directory it would be unpacked to.
    raw = gzip.decompress(out.getvalue())
    extra = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as original, tarfile.open(fileobj=extra, mode="w:gz") as copy:
        for member in original.getmembers():
            copy.addfile(member, original.extractfile(member))
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 4
        copy.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(BackupError, match="which its manifest does not list"):
        unpack_archive(io.BytesIO(extra.getvalue()), tmp_path / "unpacked")
    assert not (tmp_path.parent.parent / "etc" / "evil").exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "cannot be read|truncated|empty"),
        (b"not a gzip file at all", "cannot be read"),
        (gzip.compress(b"x" * 1024), "damaged|truncated"),
    ],
)
def test_something_else_than_an_archive_is_refused(data: bytes, expected: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=expected):
        unpack_archive(io.BytesIO(data), tmp_path / "unpacked")


def test_a_manifest_that_is_not_first_or_not_valid_is_refused(archive: bytes, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="is not one this version reads"):
        unpack_archive(io.BytesIO(rebuilt(archive, {MANIFEST: b'{"format": 2}'})), tmp_path / "unpacked")


def test_installing_drops_the_old_write_ahead_log_so_it_cannot_be_replayed(tmp_path: Path) -> None:
    target = tmp_path / "data" / "butler.db"
    target.parent.mkdir()
    live_database(target)
    # A service killed mid-work leaves its write-ahead log behind, full of frames not yet in the database file.
    killed = (
        "import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "db.execute('PRAGMA wal_autocheckpoint=0'); "
        "db.executemany('INSERT INTO rows (body) VALUES (?)', [('old',)] * 50); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", killed, str(target)], check=True)
    restored = tmp_path / "restored.db"
    live_database(restored)
    with closing(sqlite3.connect(restored, isolation_level=None)) as db:
        db.execute("INSERT INTO rows (body) VALUES ('restored')")
    assert target.with_name("butler.db-wal").stat().st_size > 0, "expected the old database to have a WAL to drop"
    install_sqlite(restored, target)
    assert integrity(target) == ["ok"]
    with closing(sqlite3.connect(target)) as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM rows")]
    assert bodies == ["restored"], f"expected only the restored row, saw {len(bodies)} rows: {bodies[:3]}"


def test_a_manifest_without_one_service_s_data_is_refused(archive: bytes, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as original:
        extracted = original.extractfile(MANIFEST)
        assert extracted is not None
        manifest = json.loads(extracted.read())
    manifest["files"] = [entry for entry in manifest["files"] if entry["path"] == BOT_STORE]
    only_the_bot = rebuilt(archive, {MANIFEST: json.dumps(manifest).encode()})
    with pytest.raises(BackupError, match=re.escape(f"expected the files {BOT_STORE}, {MCP_SQLITE}")):
        unpack_archive(io.BytesIO(only_the_bot), tmp_path / "unpacked")

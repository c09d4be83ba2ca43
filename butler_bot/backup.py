"""The bot's part of `make backup` and `make restore`: its store (chat history, handled reminders, languages).

Run inside the butler-bot container:

    python -m butler_bot.backup snapshot > bot-store.sqlite3
        A consistent copy of the live store (SQLite's online backup API), for `python -m mcp_server.backup create`.
    python -m butler_bot.backup restore < butler.tar.gz
        Checks the whole archive (manifest, sizes, sha256, SQLite integrity), then replaces the store; the bot
        must be stopped.
"""

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from butler_bot.settings import BotSettings
from shared.backup import BOT_STORE, BackupError, install_sqlite, snapshot_sqlite, unpack_archive
from shared.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m butler_bot.backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("snapshot", help="write a consistent copy of the store to stdout")
    commands.add_parser("restore", help="check an archive from stdin and put its store in place")
    args = parser.parse_args(argv)
    settings = load_settings(BotSettings, "butler-bot")
    # /tmp is the container's tmpfs: the only writable place besides the data volume.
    with tempfile.TemporaryDirectory(prefix="butler-backup-") as directory:
        scratch = Path(directory)
        try:
            if args.command == "snapshot":
                if sys.stdout.isatty():
                    raise BackupError("the snapshot goes to stdout: redirect it to a file")
                snapshot_sqlite(settings.store_path, scratch / "store.sqlite3")
                with (scratch / "store.sqlite3").open("rb") as snapshot:
                    shutil.copyfileobj(snapshot, sys.stdout.buffer)
            else:
                manifest = unpack_archive(sys.stdin.buffer, scratch)
                install_sqlite(scratch / BOT_STORE, settings.store_path)
                print(f"bot store restored from the backup of {manifest.created_at}", file=sys.stderr)
        except BackupError as exc:
            outcome = "no snapshot written" if args.command == "snapshot" else "nothing was changed"
            print(f"butler-bot backup: {exc}; {outcome}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

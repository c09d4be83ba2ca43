"""Entry point: `python -m butler_bot` starts long polling against TELEGRAM_API_URL."""

import asyncio
import logging
import os
import sys

from shared.logging import configure_logging

log = logging.getLogger("butler_bot")


def run() -> None:
    try:
        # Imported here, so a broken module (in dev: a bad save) is reported like any other crash.
        from butler_bot.app import main

        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        if not logging.getLogger().handlers:
            configure_logging("INFO")
        # One line a developer spots in `make logs`; the traceback follows it.
        log.critical("butler-bot crashed: %r; it stays down until restarted (in dev: the next save)", exc, exc_info=exc)
        sys.exit(1)
    # Everything is closed by now. Skipping the interpreter's teardown of aiogram's thousands of models
    # saves about 0.5 s on every hot-reload restart.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    run()

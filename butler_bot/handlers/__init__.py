"""One router per feature, collected here; the catch-all chat router comes last so commands win."""

from aiogram import Router

from butler_bot.handlers import briefing, buttons, chat, export, pairing, reset, start, tasks, tools

# Pairing first: a stranger's /pair (the one update they may send) must meet its own handler.
routers: list[Router] = [
    pairing.router,
    start.router,
    reset.router,
    tasks.router,
    briefing.router,
    export.router,
    tools.router,
    buttons.router,
    chat.router,
]

"""One router per feature, collected here; the catch-all chat router comes last so commands win."""

from aiogram import Router

from butler_bot.handlers import buttons, chat, export, reset, start, tasks, tools

routers: list[Router] = [
    start.router,
    reset.router,
    tasks.router,
    export.router,
    tools.router,
    buttons.router,
    chat.router,
]

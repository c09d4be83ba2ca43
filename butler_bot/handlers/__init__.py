"""One router per feature, collected here; the catch-all chat router comes last so commands win."""

from aiogram import Router

from butler_bot.handlers import buttons, chat, reset, start, tasks, tools

routers: list[Router] = [start.router, reset.router, tasks.router, tools.router, buttons.router, chat.router]

"""One router per feature; the catch-all chat router comes last so commands win."""

from aiogram import Router

from butler_bot.handlers import chat, start

routers: list[Router] = [start.router, chat.router]

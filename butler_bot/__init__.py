"""The butler's Telegram front: an aiogram 3 long-polling bot.

Run it with `python -m butler_bot` (the image's default command).
"""

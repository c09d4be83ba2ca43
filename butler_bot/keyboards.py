"""The inline buttons the bot sends, and what a press carries back (aiogram's CallbackData, at most 64 bytes)."""

import textwrap
from typing import Literal
from uuid import UUID

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from butler_bot.replies import split_message
from butler_bot.texts import Texts
from shared.results import Task

ReminderAction = Literal["done", "10m", "1h", "tomorrow"]
REMINDER_BUTTONS: dict[ReminderAction, str] = {
    "done": "button_done",
    "10m": "button_10m",
    "1h": "button_1h",
    "tomorrow": "button_tomorrow",
}
# A task's title on its button; Telegram shows a long one cut anyway.
BUTTON_TITLE_LENGTH = 40


class ReminderButton(CallbackData, prefix="rem"):
    """Done or a snooze on one delivery of a reminder: the key tells a button on an older delivery."""

    action: ReminderAction
    reminder_id: int
    key: UUID


class TaskButton(CallbackData, prefix="task"):
    """Complete a task from the /tasks list."""

    task_id: int


def reminder_keyboard(reminder_id: int, key: UUID, texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for action, label in REMINDER_BUTTONS.items():
        builder.button(text=texts(label), callback_data=ReminderButton(action=action, reminder_id=reminder_id, key=key))
    # Done alone on the first row, the snoozes under it.
    builder.adjust(1, 3)
    return builder.as_markup()


def tasks_keyboard(tasks: list[Task], texts: Texts) -> InlineKeyboardMarkup | None:
    """One button per open task, to complete it; None when there is none."""
    if not tasks:
        return None
    builder = InlineKeyboardBuilder()
    for task in tasks:
        title = textwrap.shorten(task.title, BUTTON_TITLE_LENGTH, placeholder="…")
        builder.button(text=texts("button_complete", title=title), callback_data=TaskButton(task_id=task.id))
    builder.adjust(1)
    return builder.as_markup()


async def send_with_buttons(bot: Bot, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Plain text in as many messages as it takes, the buttons under the last one."""
    *first, last = split_message(text)
    for chunk in first:
        await bot.send_message(chat_id, chunk, parse_mode=None)
    await bot.send_message(chat_id, last, parse_mode=None, reply_markup=keyboard)

"""Button presses: Done and snooze under a reminder, complete under /tasks. Never through the model.

Every press is answered (callback.answer), which also stops the Telegram client's spinner: a stale button (the
reminder is done, cancelled or snoozed since; the task is done or deleted) and one whose data does not parse (a
button from an older version of the bot) get a short sentence, never an error. The pressed message then says
what became of it and keeps only the buttons that still work.
"""

import logging
import textwrap

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from butler_bot.backends import Backends
from butler_bot.core import ToolsUnavailable
from butler_bot.keyboards import ReminderButton, TaskButton, tasks_keyboard
from butler_bot.reminder_buttons import press_reminder
from butler_bot.replies import TELEGRAM_TEXT_LIMIT, utf16_len
from butler_bot.settings import BotSettings
from butler_bot.texts import Texts
from butler_bot.views import tasks_view, when
from shared.results import PressResult, Task, TaskList

log = logging.getLogger(__name__)

router = Router(name="buttons")

# A task's title in an answer: Telegram shows at most 200 characters there.
ANSWER_TITLE_LENGTH = 100
# What a stale press on a reminder says, by the reminder's status now.
STALE_REMINDER = {
    "done": "reminder_already_done",
    "cancelled": "reminder_cancelled",
    "skipped": "reminder_cancelled",
    "paused": "reminder_paused",
    "pending": "reminder_moved",
}


def reminder_answer(result: PressResult | None, texts: Texts) -> str:
    if result is None:
        return texts("reminder_gone")
    due = when(result.due_local)
    if result.changed:
        return texts("reminder_done") if result.status == "done" else texts("reminder_snoozed", due=due)
    # Delivered or failed under a newer key: it was snoozed, then sent again.
    return texts(STALE_REMINDER.get(result.status, "reminder_resent"), due=due)


async def edit_pressed(callback: CallbackQuery, text: str | None, keyboard: InlineKeyboardMarkup | None) -> None:
    """Replace the pressed message's text (when given, and it fits) and buttons."""
    message = callback.message
    # An InaccessibleMessage (too old) cannot be edited.
    if not isinstance(message, Message):
        return
    try:
        if text is not None and text != message.text and utf16_len(text) <= TELEGRAM_TEXT_LIMIT:
            await message.edit_text(text, parse_mode=None, reply_markup=keyboard)
        else:
            await message.edit_reply_markup(reply_markup=keyboard)
    except TelegramBadRequest as exc:
        log.warning("could not edit message %s in chat %s after a press: %s", message.message_id, message.chat.id, exc)


@router.callback_query(ReminderButton.filter())
async def reminder_pressed(
    callback: CallbackQuery, callback_data: ReminderButton, settings: BotSettings, texts: Texts
) -> None:
    user_id = callback.from_user.id
    try:
        result = await press_reminder(
            settings, user_id, callback_data.reminder_id, callback_data.key, callback_data.action
        )
    except ToolsUnavailable as exc:
        log.warning("%s on reminder %s for user %s: %s", callback_data.action, callback_data.reminder_id, user_id, exc)
        await callback.answer(texts("tools_unavailable"))
        return
    answer = reminder_answer(result, texts)
    await callback.answer(answer)
    if result is not None and result.changed and isinstance(callback.message, Message):
        # The note replaces the buttons: the message says what became of the reminder.
        await edit_pressed(callback, f"{callback.message.text}\n{answer}", None)
    else:
        # Stale: none of these buttons would do anything now.
        await edit_pressed(callback, None, None)


@router.callback_query(TaskButton.filter())
async def task_pressed(callback: CallbackQuery, callback_data: TaskButton, backends: Backends, texts: Texts) -> None:
    user_id, task_id = callback.from_user.id, callback_data.task_id
    tools = (await backends.conversations()).tools
    try:
        # The open tasks first, to tell a press that completes the task from one on a task done already.
        listed = await tools.call(user_id, "tasks_list", {})
        completed = await tools.call(user_id, "tasks_complete", {"task_id": task_id})
    except ToolsUnavailable as exc:
        log.warning("completing task %s for user %s: tools unavailable: %s", task_id, user_id, exc)
        await callback.answer(texts("tools_unavailable"))
        return
    if listed.is_error or listed.data is None:
        log.warning("listing tasks for user %s failed: %s", user_id, listed.text)
        still_open = None
    else:
        still_open = TaskList.model_validate(listed.data)
    if completed.is_error or completed.data is None:
        log.info("completing task %s for user %s from a button: %s", task_id, user_id, completed.text)
        await callback.answer(texts("task_gone"))
    else:
        title = textwrap.shorten(Task.model_validate(completed.data).title, ANSWER_TITLE_LENGTH, placeholder="…")
        was_open = still_open is None or any(shown.id == task_id for shown in still_open.tasks)
        await callback.answer(texts("task_done" if was_open else "task_already_done", title=title))
    if still_open is not None:
        # The list without the task, as /tasks would show it now.
        still_open.tasks = [shown for shown in still_open.tasks if shown.id != task_id]
        keyboard = tasks_keyboard(still_open.tasks, texts)
        await edit_pressed(callback, tasks_view(still_open.model_dump(), texts), keyboard)


@router.callback_query()
async def old_button(callback: CallbackQuery, texts: Texts) -> None:
    """A button whose data parses as none of the above: from an older version of the bot."""
    log.info("a press with unknown data %r from user %s", callback.data, callback.from_user.id)
    await callback.answer(texts("old_button"))

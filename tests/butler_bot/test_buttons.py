"""Buttons as a user presses them in the Bot API emulator: the real dispatcher and MCP server, never the model.

The bot's updates come from the emulator (getUpdates) and go through the real dispatcher; reminders come from the
real MCP server through the real delivery loop; the LLM stand-in only records that nobody asked it anything.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import select, update

from butler_bot.app import build_dispatcher
from butler_bot.conversation import Conversations
from butler_bot.keyboards import ReminderButton, TaskButton
from butler_bot.llm import LlmClient
from butler_bot.prompt import SystemPrompt
from butler_bot.reminders import ReminderDelivery
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import TextBook, Texts, WatchedFile
from butler_bot.tools import McpTools
from mcp_server.db import Database
from mcp_server.models import Reminder
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import PrebuiltBackends, release_routers
from tests.e2e.emulator import client_post, make_bot, new_token
from tests.mcp_server.conftest import TOKEN, RunningServer

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0  # seconds; generous, a loaded CI machine is slow


@dataclass
class Butler:
    """The bot on the emulator, seen from one user's chat."""

    url: str
    token: str
    user_id: int
    bot: Bot
    dp: Dispatcher
    settings: BotSettings
    store: BotStore
    backends: PrebuiltBackends
    database: Database
    texts: Texts
    offset: int = 0

    async def client(self, path: str, **payload: Any) -> Any:
        return await client_post(self.url, path, {"token": self.token, "chat_id": self.user_id, **payload})

    async def handle_updates(self) -> None:
        """Take what the user did from the emulator and run it through the dispatcher, as polling would."""
        for incoming in await self.bot.get_updates(offset=self.offset, timeout=0):
            self.offset = incoming.update_id + 1
            await self.dp.feed_update(self.bot, incoming)

    async def write(self, text: str) -> None:
        await self.client("/sendMessage", user_id=self.user_id, text=text)
        await self.handle_updates()

    async def press(self, message_id: int, text: str) -> str:
        """Press the button labelled `text` under the message; the bot's answer to the press."""
        pressed = await self.client("/sendCallback", user_id=self.user_id, message_id=message_id, text=text)
        await self.handle_updates()
        answers = {q["callback_query_id"]: q["answer"] for q in await self.client("/getCallbackAnswers")}
        answer = answers[pressed["callback_query_id"]]
        assert answer is not None, f"expected the press on {text!r} to be answered; it was not"
        return answer["text"]

    async def message(self, message_id: int) -> dict[str, Any]:
        return await self.client("/getMessage", message_id=message_id)

    async def new_messages(self) -> list[dict[str, Any]]:
        """The bot's messages not read yet, as Telegram shows them now."""
        return [await self.message(stored["messageId"]) for stored in await self.client("/getUpdates")]

    async def deliver_due(self) -> dict[str, Any]:
        """Run the reminder delivery until a message arrives; that message."""
        loop = ReminderDelivery(self.bot, self.settings, self.store, TextBook(self.settings.texts_file), self.backends)
        loop.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not (found := await self.new_messages()):
                assert time.monotonic() < deadline, f"expected a reminder in the chat within {TIMEOUT:.0f} s"
                await asyncio.sleep(0.1)
        finally:
            await loop.stop()
        assert len(found) == 1, f"expected one reminder message, saw {found}"
        return found[0]

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        result = await self.backends.prebuilt.tools.call(self.user_id, name, arguments)
        assert not result.is_error and result.data is not None, result.text
        return result.data

    async def reminder(self, reminder_id: int) -> Reminder:
        async with self.database.session() as session:
            row = await session.scalar(select(Reminder).where(Reminder.id == reminder_id))
            assert row is not None, f"expected reminder {reminder_id} on the server"
            return row

    async def make_due(self, reminder_id: int, **values: Any) -> None:
        async with self.database.session() as session:
            await session.execute(
                update(Reminder).where(Reminder.id == reminder_id).values(due_at=datetime.now(UTC), **values)
            )

    async def reminder_rows(self) -> list[int]:
        async with self.database.session() as session:
            return list(await session.scalars(select(Reminder.id).where(Reminder.user_id == self.user_id)))


@pytest.fixture
async def butler(
    emulator_url: str,
    standin: StandIn,
    make_settings: Callable[..., BotSettings],
    mcp_server: RunningServer,
    user_id: int,
) -> AsyncIterator[Butler]:
    settings = make_settings(
        llm_base_url=standin.url,
        mcp_url=mcp_server.mcp_url,
        mcp_auth_token=TOKEN,
        allowed_user_ids=(user_id,),
        reminder_poll_seconds=0.05,
    )
    store = BotStore.open(settings.store_path, settings.history_turns)
    conversations = Conversations(
        settings, store, SystemPrompt(WatchedFile(settings.system_prompt_file)), LlmClient(settings), McpTools(settings)
    )
    backends = PrebuiltBackends(settings, store, conversations)
    release_routers()
    textbook = TextBook(settings.texts_file)
    dp = build_dispatcher(settings, store, textbook, backends)
    token = new_token()
    bot = make_bot(emulator_url, token)
    database = Database(mcp_server.database_url)
    butler = Butler(emulator_url, token, user_id, bot, dp, settings, store, backends, database, textbook.texts("en"))
    # The user writes first, so the emulator knows the chat; /help needs neither the model nor the tools.
    await butler.write("/help")
    await butler.new_messages()
    try:
        yield butler
    finally:
        assert standin.log == [], f"expected no request to the model from a button, saw {standin.log}"
        await conversations.close()
        await database.close()
        await bot.session.close()
        store.close()


def labels(message: dict[str, Any]) -> list[list[str]]:
    return [[button["text"] for button in row] for row in message.get("reply_markup", {}).get("inline_keyboard", [])]


async def a_delivered_reminder(butler: Butler, text: str) -> tuple[int, dict[str, Any]]:
    created = await butler.tool("reminders_create", text=text, after_minutes=30)
    await butler.make_due(created["id"])
    return created["id"], await butler.deliver_due()


async def test_a_reminder_comes_with_buttons_and_snooze_then_done_act_on_the_same_row(butler: Butler) -> None:
    reminder_id, message = await a_delivered_reminder(butler, "water the plants")
    assert labels(message) == [["✅ Done"], ["+10 min", "+1 h", "Tomorrow"]], f"expected the buttons, saw {message}"
    first_key = (await butler.reminder(reminder_id)).delivery_key

    before = datetime.now(UTC)
    answer = await butler.press(message["message_id"], "+10 min")
    row = await butler.reminder(reminder_id)
    assert answer.startswith("💤 Snoozed until"), f"expected the snooze answered, saw {answer!r}"
    assert row.status == "pending" and row.delivery_key != first_key, (row.status, row.delivery_key)
    assert before + timedelta(minutes=9) < row.due_at < before + timedelta(minutes=11), (
        f"expected it due about 10 min after the press at {before:%H:%M:%S}, saw {row.due_at:%H:%M:%S}"
    )
    assert await butler.reminder_rows() == [reminder_id], "expected the snooze to move the reminder, not add one"
    edited = await butler.message(message["message_id"])
    assert labels(edited) == [] and edited["text"].endswith(answer), (
        f"expected the pressed message to say it was snoozed and keep no button, saw {edited}"
    )

    await butler.make_due(reminder_id)
    again = await butler.deliver_due()
    assert "water the plants" in again["text"] and labels(again) == labels(message), again
    assert await butler.press(again["message_id"], "✅ Done") == "✅ Done."
    assert (await butler.reminder(reminder_id)).status == "done"
    assert labels(await butler.message(again["message_id"])) == [], "expected Done to take the buttons away"


async def test_a_button_on_a_cancelled_reminder_gets_a_short_answer_and_changes_nothing(butler: Butler) -> None:
    reminder_id, message = await a_delivered_reminder(butler, "call the plumber")
    async with butler.database.session() as session:
        await session.execute(update(Reminder).where(Reminder.id == reminder_id).values(status="cancelled"))
    assert await butler.press(message["message_id"], "+1 h") == "This reminder was cancelled."
    assert (await butler.reminder(reminder_id)).status == "cancelled"
    assert labels(await butler.message(message["message_id"])) == [], "expected the stale buttons taken away"


async def test_a_button_from_an_older_delivery_says_where_the_reminder_went(butler: Butler) -> None:
    reminder_id, message = await a_delivered_reminder(butler, "stretch")
    pressed_at = datetime.now(UTC)
    await butler.press(message["message_id"], "Tomorrow")
    # The old message lost its buttons; a client that kept them (or a second device) can still send the press.
    old = ReminderButton(action="done", reminder_id=reminder_id, key=UUID(int=0)).pack()
    stale = await butler.bot.send_message(butler.user_id, "old copy", reply_markup=one_button("old", old))
    answer = await butler.press(stale.message_id, "old")
    assert answer.startswith("Already snoozed until"), f"expected the stale press explained, saw {answer!r}"
    row = await butler.reminder(reminder_id)
    assert row.status == "pending" and row.due_at > pressed_at + timedelta(hours=22), (row.status, row.due_at)


def one_button(text: str, data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)]])


async def test_a_button_whose_data_does_not_parse_gets_a_short_answer(butler: Butler) -> None:
    sent = await butler.bot.send_message(butler.user_id, "from an old version", reply_markup=one_button("Go", "v0:42"))
    assert await butler.press(sent.message_id, "Go") == butler.texts("old_button")
    bad_snooze = ReminderButton.__prefix__ + ":1y:7:" + "0" * 32
    sent = await butler.bot.send_message(butler.user_id, "unknown snooze", reply_markup=one_button("1y", bad_snooze))
    assert await butler.press(sent.message_id, "1y") == butler.texts("old_button")


async def test_tasks_come_with_a_button_each_that_completes_it(butler: Butler) -> None:
    milk = await butler.tool("tasks_add", title="buy milk")
    bread = await butler.tool("tasks_add", title="buy bread")
    gone = await butler.tool("tasks_add", title="fix the bike")
    await butler.write("/tasks")
    (listing,) = await butler.new_messages()
    assert labels(listing) == [["✓ buy milk"], ["✓ buy bread"], ["✓ fix the bike"]], listing

    assert await butler.press(listing["message_id"], "✓ buy milk") == "✅ Done: buy milk"
    edited = await butler.message(listing["message_id"])
    assert labels(edited) == [["✓ buy bread"], ["✓ fix the bike"]] and "buy milk" not in edited["text"], edited
    done = await butler.tool("tasks_list", show="done")
    assert [task["id"] for task in done["tasks"]] == [milk["id"]], done

    await butler.tool("tasks_delete", task_id=gone["id"])
    assert await butler.press(listing["message_id"], "✓ fix the bike") == "This task no longer exists."
    assert labels(await butler.message(listing["message_id"])) == [["✓ buy bread"]], "expected the list refreshed"
    await butler.tool("tasks_complete", task_id=bread["id"])
    assert await butler.press(listing["message_id"], "✓ buy bread") == "Done already: buy bread"
    edited = await butler.message(listing["message_id"])
    assert labels(edited) == [] and edited["text"] == butler.texts("tasks_empty"), edited


def test_callback_data_stays_within_telegrams_64_bytes() -> None:
    largest = 2**31 - 1  # the largest row id (32-bit on PostgreSQL)
    packed = [
        ReminderButton(action=action, reminder_id=largest, key=UUID(int=2**128 - 1)).pack()
        for action in ("done", "10m", "1h", "tomorrow")
    ] + [TaskButton(task_id=largest).pack()]
    too_long = [data for data in packed if len(data.encode()) > 64]
    assert not too_long, f"expected every callback data within 64 bytes, saw {too_long}"

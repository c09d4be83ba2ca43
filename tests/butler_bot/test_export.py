"""/export through the Bot API emulator and the real MCP server: two files of the user's own data, no one else's."""

import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiogram import Bot

from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import SHIPPED_TEXTS, TextBook
from shared.results import Export
from tests.butler_bot.fakes import release_routers, text_update
from tests.e2e.emulator import client_post, make_bot, new_token
from tests.mcp_server.conftest import TOKEN, RunningServer, mcp_client

pytestmark = pytest.mark.e2e

ALICE, BOB, CAROL = 808_001, 808_002, 808_003


class ExportingBot:
    """The bot's dispatcher with a Bot talking to the emulator, and the user's side of the chat."""

    def __init__(self, emulator_url: str, settings: BotSettings) -> None:
        self.url, self.token = emulator_url, new_token()
        self.bot: Bot = make_bot(emulator_url, self.token)
        self.store = BotStore.open(settings.store_path, settings.history_turns)
        release_routers()
        self.dp = build_dispatcher(settings, self.store, TextBook(settings.texts_file), Backends(settings, self.store))

    async def export(self, user_id: int, language: str = "en") -> list[dict[str, Any]]:
        """The user sends /export; the bot's messages in their chat, as the user's client receives them."""
        # The user's message makes the emulator know the chat.
        await client_post(self.url, "/sendMessage", {"token": self.token, "user_id": user_id, "text": "/export"})
        await self.dp.feed_update(self.bot, text_update(user_id, "/export", language=language))
        updates = await client_post(self.url, "/getUpdates", {"token": self.token, "chat_id": user_id})
        return [update["message"] for update in updates]

    async def download(self, message: dict[str, Any]) -> bytes:
        """The file of a document message, read back the way a Telegram client would: getFile, then its path."""
        file = await self.bot.get_file(message["document"]["file_id"])
        assert file.file_path, f"expected getFile to give a path, got {file!r}"
        data = await self.bot.download_file(file.file_path, io.BytesIO())
        assert data is not None
        return data.getvalue()

    async def close(self) -> None:
        await self.bot.session.close()
        self.store.close()


@pytest.fixture
async def exporting_bot(
    emulator_url: str, mcp_server: RunningServer, make_settings: Callable[..., BotSettings]
) -> AsyncIterator[Callable[..., ExportingBot]]:
    made: list[ExportingBot] = []

    def build(**overrides: Any) -> ExportingBot:
        defaults = {"mcp_url": mcp_server.mcp_url, "mcp_auth_token": TOKEN, "allowed_user_ids": (ALICE, BOB)}
        made.append(ExportingBot(emulator_url, make_settings(**(defaults | overrides))))
        return made[-1]

    yield build
    for bot in made:
        await bot.close()


async def call(url: str, user_id: int, tool: str, **arguments: Any) -> dict[str, Any]:
    async with mcp_client(url, user_id=user_id) as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error and result.structured_content, f"expected {tool} to succeed, got {result.content}"
    return result.structured_content


async def test_export_sends_the_users_own_tasks_notes_and_reminders_as_markdown_and_json(
    exporting_bot: Callable[..., ExportingBot], mcp_server: RunningServer
) -> None:
    url = mcp_server.mcp_url
    await call(url, ALICE, "tasks_add", title="Buy milk", due="2031-05-04")
    done = await call(url, ALICE, "tasks_add", title="File the taxes", notes="form 3\nreceipts in the blue folder")
    await call(url, ALICE, "tasks_complete", task_id=done["id"])
    await call(url, ALICE, "notes_save", title="Wi-Fi", text="The guest password is on the fridge")
    await call(url, ALICE, "reminders_create", text="Call mum", after_minutes=60)
    await call(url, BOB, "tasks_add", title="Bob's surprise party")
    await call(url, BOB, "notes_save", text="Bob's bank PIN hint")

    bot = exporting_bot()
    messages = await bot.export(ALICE)

    names = [message.get("document", {}).get("file_name", "") for message in messages]
    assert len(messages) == 2 and names[0].endswith(".md") and names[1].endswith(".json"), (
        f"expected two documents, Markdown then JSON; saw {messages}"
    )
    assert "2 tasks, 1 notes, 1 reminders" in messages[0].get("caption", ""), (
        f"expected the caption to count what is inside; saw {messages[0].get('caption')!r}"
    )
    export = Export.model_validate_json(await bot.download(messages[1]))
    assert export.user_id == ALICE, f"expected the export of user {ALICE}, got {export.user_id}"
    assert {(task.title, task.status) for task in export.tasks} == {("Buy milk", "open"), ("File the taxes", "done")}
    assert [note.text for note in export.notes] == ["The guest password is on the fridge"]
    assert [(reminder.text, reminder.status) for reminder in export.reminders] == [("Call mum", "pending")]
    markdown = (await bot.download(messages[0])).decode()
    for expected in ("- [ ] Buy milk (due 2031-05-04)", "- [x] File the taxes (done ", "  receipts in the blue folder"):
        assert expected in markdown, f"expected the line {expected!r} in the Markdown file; it was:\n{markdown}"
    assert "### Wi-Fi" in markdown and "Call mum (pending)" in markdown, f"expected the note and reminder:\n{markdown}"
    json_text = json.dumps(export.model_dump())
    for secret in ("Bob's surprise party", "Bob's bank PIN hint"):
        assert secret not in json_text and secret not in markdown, f"expected none of Bob's data, found {secret!r}"


async def test_export_of_a_user_with_nothing_says_so_in_their_language(
    exporting_bot: Callable[..., ExportingBot],
) -> None:
    bot = exporting_bot(allowed_user_ids=(CAROL,))
    messages = await bot.export(CAROL, language="ru")
    assert len(messages) == 2, f"expected two documents, saw {messages}"
    assert "задач — 0" in messages[0].get("caption", ""), f"expected a Russian caption, saw {messages[0]}"
    markdown = (await bot.download(messages[0])).decode()
    assert markdown.count("(нет)") == 3, f"expected '(нет)' under each of the three headings:\n{markdown}"


async def test_export_while_the_mcp_server_is_down_says_the_tools_are_unavailable(
    exporting_bot: Callable[..., ExportingBot],
) -> None:
    bot = exporting_bot(mcp_url="http://127.0.0.1:9/mcp")
    messages = await bot.export(ALICE)
    texts = [message.get("text") for message in messages]
    assert texts == [TextBook(SHIPPED_TEXTS).texts("en")("tools_unavailable")], (
        f"expected one message saying the tools are unavailable, saw {messages}"
    )


async def test_the_export_endpoint_answers_for_the_named_user_only(mcp_server: RunningServer) -> None:
    await call(mcp_server.mcp_url, BOB, "tasks_add", title="Bob's own task")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=mcp_server.base_url, timeout=30) as http:
        stranger = (await http.get("/internal/export", headers={**auth, "X-Telegram-User-Id": "808999"})).json()
        no_user = await http.get("/internal/export", headers=auth)
        bad_user = await http.get("/internal/export", headers={**auth, "X-Telegram-User-Id": "0"})
        no_token = await http.get("/internal/export", headers={"X-Telegram-User-Id": str(BOB)})
    assert stranger["tasks"] == stranger["notes"] == stranger["reminders"] == [], (
        f"expected nothing for a user with no rows, got {stranger}"
    )
    assert (no_user.status_code, bad_user.status_code, no_token.status_code) == (422, 422, 401), (
        f"expected 422 without a user, 422 for user 0 and 401 without the token; got "
        f"{no_user.status_code}, {bad_user.status_code}, {no_token.status_code}"
    )

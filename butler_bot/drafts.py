"""An answer on its way: "typing…" in every chat; in a private chat also the answer itself, growing in a draft.

The draft (Bot API sendMessageDraft) shows the text as the model writes it, or a short line while a tool
runs ("Adding the task…"). It is a preview only: the answer is then sent as one ordinary message (or as many
as its length takes). A draft that fails is logged at DEBUG and never holds up or fails the answer.
"""

import asyncio
import html
import logging
from types import TracebackType

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.utils.chat_action import ChatActionSender

from butler_bot.replies import render_html, send_text, split_message
from butler_bot.texts import Texts

log = logging.getLogger(__name__)

# At most one draft update this often (seconds): each one is a Bot API call, and flood control applies.
DRAFT_INTERVAL = 0.7
# Telegram shows a draft for about 30 s: one that has not changed for this long is sent again.
DRAFT_REFRESH = 20.0
# Seconds one draft call may take; a slow one is dropped rather than holding up the next.
DRAFT_TIMEOUT = 10
# The line for a tool step without a text of its own in the texts file.
GENERIC_TOOL_TEXT = "tool_working"


class ChatProgress:
    """The `Progress` of one answer in one chat, then its delivery with `finish`.

    async with ChatProgress(bot, chat_id, private=True, draft_id=message.message_id, texts=texts) as progress:
        answer = await conversations.reply(..., progress=progress)
        await progress.finish(answer.text, formatted=answer.from_model)
    """

    def __init__(self, bot: Bot, chat_id: int, *, private: bool, draft_id: int, texts: Texts) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._private = private
        self._draft_id = draft_id
        self._texts = texts
        self._typing = ChatActionSender.typing(chat_id, bot)
        self._wanted: str | None = None  # the draft to show next, as Telegram HTML
        self._changed = asyncio.Event()
        self._drafts: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "ChatProgress":
        await self._typing.__aenter__()
        if self._private:
            self._drafts = asyncio.create_task(self._show_drafts(), name=f"drafts-{self._chat_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._stop()

    async def text(self, so_far: str) -> None:
        # A draft holds one message: past Telegram's limit, show the part that the last message will be.
        chunks = split_message(so_far)
        if chunks:
            self._want(render_html(chunks[-1]))

    async def tool(self, name: str) -> None:
        key = f"tool_{name}"
        self._want(html.escape(self._texts(key if key in self._texts else GENERIC_TOOL_TEXT), quote=False))

    async def finish(self, text: str, *, formatted: bool) -> None:
        """Send the whole answer; drafts and "typing…" stop first, so neither shows after it."""
        await self._stop()
        await send_text(self._bot, self._chat_id, text, formatted=formatted)

    def _want(self, draft: str) -> None:
        if self._drafts is not None and draft.strip():
            self._wanted = draft
            self._changed.set()

    async def _stop(self) -> None:
        if self._drafts is not None:
            # Cancelled rather than awaited: a draft stuck in flood control must not delay the answer.
            self._drafts.cancel()
            (outcome,) = await asyncio.gather(self._drafts, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("chat %s: the drafts stopped on an unexpected error", self._chat_id, exc_info=outcome)
            self._drafts = None
        await self._typing.__aexit__(None, None, None)

    async def _show_drafts(self) -> None:
        shown: str | None = None
        while True:
            try:
                async with asyncio.timeout(DRAFT_REFRESH):
                    await self._changed.wait()
                stale = False
            except TimeoutError:
                stale = True
            self._changed.clear()
            draft = self._wanted
            if draft is None or (draft == shown and not stale):
                continue
            try:
                await self._bot.send_message_draft(
                    self._chat_id, self._draft_id, text=draft, parse_mode=ParseMode.HTML, request_timeout=DRAFT_TIMEOUT
                )
            except (TelegramAPIError, TelegramNetworkError) as exc:
                log.debug("chat %s: draft not shown: %s", self._chat_id, exc)
            shown = draft
            await asyncio.sleep(DRAFT_INTERVAL)

"""Sending answers: split at Telegram's 4096-character limit, light formatting that can never block delivery.

The model writes Markdown-ish text. **bold**, `code` and ``` blocks become Telegram HTML; everything else is
escaped, so `<`, `>`, `&` and stray `*` arrive as written. Should Telegram still refuse the markup, the same
text goes again as plain text.
"""

import html
import logging
import re

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest

log = logging.getLogger(__name__)

TELEGRAM_TEXT_LIMIT = 4096
CODE = re.compile(r"```[\w+-]*\n?(.*?)```|`([^`\n]+)`", re.DOTALL)
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL)


def utf16_len(text: str) -> int:
    """Telegram counts UTF-16 code units: an emoji outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


def _longest_prefix(text: str, limit: int) -> int:
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_message(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` UTF-16 units, cut at a paragraph, line or word break where one is near."""
    chunks = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        cut = _longest_prefix(rest, limit)
        window = rest[:cut]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at
                break
        chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if chunk:
            chunks.append(chunk)
    if rest:
        chunks.append(rest)
    return chunks


def _inline(text: str) -> str:
    return BOLD.sub(r"<b>\1</b>", html.escape(text, quote=False))


def render_html(text: str) -> str:
    """Telegram HTML for **bold**, `code` and ``` blocks; all other text escaped."""
    parts = []
    position = 0
    for match in CODE.finditer(text):
        parts.append(_inline(text[position : match.start()]))
        block, inline = match.group(1), match.group(2)
        if block is not None:
            parts.append(f"<pre>{html.escape(block.strip(chr(10)), quote=False)}</pre>" if block.strip() else "")
        else:
            parts.append(f"<code>{html.escape(inline, quote=False)}</code>")
        position = match.end()
    parts.append(_inline(text[position:]))
    return "".join(parts)


async def send_text(bot: Bot, chat_id: int, text: str, *, formatted: bool = False) -> None:
    """Send `text` in as many messages as it takes; `formatted` renders the model's Markdown-ish markup."""
    for chunk in split_message(text):
        if formatted:
            rendered = render_html(chunk)
            if rendered.strip():
                try:
                    await bot.send_message(chat_id, rendered, parse_mode=ParseMode.HTML)
                    continue
                except TelegramBadRequest as exc:
                    log.warning("chat %s: Telegram refused the formatted reply (%s); sending plain text", chat_id, exc)
        await bot.send_message(chat_id, chunk, parse_mode=None)

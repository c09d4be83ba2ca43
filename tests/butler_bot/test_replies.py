"""Answers always arrive: split under Telegram's limit, formatting escaped, plain text when markup is refused."""

from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage

from butler_bot.replies import render_html, send_text, split_message, utf16_len
from tests.butler_bot.fakes import recording_bot


def test_short_text_is_one_chunk() -> None:
    assert split_message("  hello  ") == ["hello"]
    assert split_message("   ") == []


def test_long_text_is_cut_at_paragraphs_then_words() -> None:
    paragraphs = "\n\n".join(["a" * 3000, "b" * 3000, "c" * 100])
    assert split_message(paragraphs) == ["a" * 3000, "b" * 3000 + "\n\n" + "c" * 100]
    words = " ".join(["word"] * 2000)
    chunks = split_message(words)
    assert all(len(chunk) <= 4096 for chunk in chunks) and " ".join(chunks) == words


def test_text_without_breaks_is_cut_hard() -> None:
    assert [len(chunk) for chunk in split_message("x" * 9000)] == [4096, 4096, 808]


def test_limit_counts_utf16_units_like_telegram() -> None:
    emoji = "😀" * 3000  # two UTF-16 units each
    chunks = split_message(emoji)
    assert [utf16_len(chunk) for chunk in chunks] == [4096, 1904], [utf16_len(chunk) for chunk in chunks]


def test_markup_becomes_html_and_everything_else_is_escaped() -> None:
    assert render_html("**Done**: 1 < 2 & 3 > 2") == "<b>Done</b>: 1 &lt; 2 &amp; 3 &gt; 2"
    assert render_html("a *stray and **unbalanced") == "a *stray and **unbalanced"
    assert render_html("run `ls <dir>` now") == "run <code>ls &lt;dir&gt;</code> now"
    assert render_html("```python\nif a < b:\n    **x**\n```") == "<pre>if a &lt; b:\n    **x**</pre>"
    assert render_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


async def test_refused_markup_is_sent_again_as_plain_text() -> None:
    bot, session = recording_bot()
    session.failures.append(
        TelegramBadRequest(SendMessage(chat_id=1, text="x"), "Bad Request: can't parse entities: nope")
    )
    await send_text(bot, 1, "**bold** text", formatted=True)
    assert [(call.text, call.parse_mode) for call in session.sent(1)] == [
        ("<b>bold</b> text", "HTML"),
        ("**bold** text", None),
    ]

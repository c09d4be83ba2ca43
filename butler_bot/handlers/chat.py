"""Everything else the user writes goes to the agent, which answers with progress shown; anything but text gets a
one-line answer, and so does an edited message: the bot acts on new messages only, so an edit never repeats or
undoes what the first version did."""

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.drafts import ChatProgress
from butler_bot.texts import Texts

router = Router(name="chat")

# The longest text a Telegram client sends in one message; anything longer did not come from a person typing.
MAX_TEXT_CHARS = 4096


@router.message(F.text.is_not(None))
async def chat(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None and message.text is not None
    text = message.text
    if not text.strip():
        await message.answer(texts("empty_text"), parse_mode=None)
        return
    if len(text) > MAX_TEXT_CHARS:
        await message.answer(texts("text_too_long", length=len(text), limit=MAX_TEXT_CHARS), parse_mode=None)
        return
    private = message.chat.type == ChatType.PRIVATE
    # The user's message id is a non-zero id unique in the chat: the draft of the answer to it.
    progress = ChatProgress(bot, message.chat.id, private=private, draft_id=message.message_id, texts=texts)
    async with progress:
        conversations = await backends.conversations()
        answer = await conversations.reply(message.chat.id, message.from_user.id, text, texts, progress=progress)
        await progress.finish(answer.text, formatted=answer.from_model)


@router.edited_message()
async def edited(message: Message, texts: Texts) -> None:
    await message.answer(texts("edited_ignored"), parse_mode=None)


@router.message()
async def not_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("text_only"), parse_mode=None)

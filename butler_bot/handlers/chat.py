"""Everything else the user writes goes to the agent, which answers with progress shown; anything but text gets a
one-line answer."""

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import Message

from butler_bot.backends import Backends
from butler_bot.drafts import ChatProgress
from butler_bot.texts import Texts

router = Router(name="chat")


@router.message(F.text)
async def chat(message: Message, bot: Bot, backends: Backends, texts: Texts) -> None:
    assert message.from_user is not None and message.text is not None
    private = message.chat.type == ChatType.PRIVATE
    # The user's message id is a non-zero id unique in the chat: the draft of the answer to it.
    progress = ChatProgress(bot, message.chat.id, private=private, draft_id=message.message_id, texts=texts)
    async with progress:
        conversations = await backends.conversations()
        user_id, text = message.from_user.id, message.text
        answer = await conversations.reply(message.chat.id, user_id, text, texts, progress=progress)
        await progress.finish(answer.text, formatted=answer.from_model)


@router.message()
async def not_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("text_only"), parse_mode=None)

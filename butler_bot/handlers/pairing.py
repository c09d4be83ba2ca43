"""/pair CODE makes the first person with the code the owner; the owner lets others in with /allow ID or by
forwarding a message they wrote, and takes them out with /deny ID. With ALLOWED_USER_IDS set, all three say so."""

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, MessageOriginHiddenUser, MessageOriginUser

from butler_bot.middlewares.access import PAIR_COMMAND
from butler_bot.pairing import LOCKOUT_SECONDS, Pairing, PairOutcome
from butler_bot.texts import Texts

router = Router(name="pairing")

PAIR_REPLIES = {
    PairOutcome.PAIRED: "paired",
    PairOutcome.WRONG: "pair_wrong",
    PairOutcome.NO_CODE: "pair_usage",
    PairOutcome.USER_LIMITED: "pair_too_many",
    PairOutcome.EVERYONE_LIMITED: "pair_paused",
}


def user_id_in(command: CommandObject) -> int | None:
    """The Telegram id after the command, or None when there is none or it is not a number."""
    text = (command.args or "").strip()
    return int(text) if text.isdecimal() and text.isascii() else None


# async: aiogram runs a plain function filter in a worker thread, and the store belongs to the event loop's.
async def from_the_owner(message: Message, pairing: Pairing) -> bool:
    return message.from_user is not None and message.from_user.id == pairing.owner()


@router.message(PAIR_COMMAND)
async def pair(message: Message, command: CommandObject, pairing: Pairing, texts: Texts) -> None:
    assert message.from_user is not None
    outcome = pairing.try_code(message.from_user.id, command.args or "")
    if outcome is PairOutcome.CLOSED:
        await message.answer(texts("access_configured" if pairing.configured else "pair_done"), parse_mode=None)
    elif outcome is not PairOutcome.QUIET:
        await message.answer(texts(PAIR_REPLIES[outcome], minutes=LOCKOUT_SECONDS // 60), parse_mode=None)


async def refused_to_change(message: Message, pairing: Pairing, texts: Texts) -> bool:
    """Answer and say True when the sender may not change who is let in."""
    if pairing.configured:
        await message.answer(texts("access_configured"), parse_mode=None)
    elif not await from_the_owner(message, pairing):
        await message.answer(texts("owner_only"), parse_mode=None)
    else:
        return False
    return True


@router.message(Command("allow"))
async def allow(message: Message, command: CommandObject, pairing: Pairing, texts: Texts) -> None:
    assert message.from_user is not None
    if await refused_to_change(message, pairing, texts):
        return
    if (user_id := user_id_in(command)) is None:
        await message.answer(texts("allow_usage"), parse_mode=None)
        return
    await let_in(message, pairing, texts, user_id, f"{user_id}")


@router.message(Command("deny"))
async def deny(message: Message, command: CommandObject, pairing: Pairing, texts: Texts) -> None:
    assert message.from_user is not None
    if await refused_to_change(message, pairing, texts):
        return
    if (user_id := user_id_in(command)) is None:
        key = "deny_usage"
    elif user_id == message.from_user.id:
        key = "deny_owner"
    else:
        key = "denied" if pairing.deny(user_id, by=message.from_user.id) else "deny_unknown"
    await message.answer(texts(key, user_id=user_id), parse_mode=None)


# Only the paired owner's forwards mean "let them in"; everyone else's go on to the chat as before.
@router.message(F.forward_origin, from_the_owner)
async def allow_forwarded(message: Message, pairing: Pairing, texts: Texts) -> None:
    origin = message.forward_origin
    if isinstance(origin, MessageOriginUser) and not origin.sender_user.is_bot:
        sender = origin.sender_user
        await let_in(message, pairing, texts, sender.id, f"{sender.full_name} ({sender.id})")
    elif isinstance(origin, MessageOriginUser):
        await message.answer(texts("allow_bot"), parse_mode=None)
    elif isinstance(origin, MessageOriginHiddenUser):
        await message.answer(texts("allow_hidden", name=origin.sender_user_name), parse_mode=None)
    else:
        await message.answer(texts("allow_not_a_person"), parse_mode=None)


async def let_in(message: Message, pairing: Pairing, texts: Texts, user_id: int, name: str) -> None:
    assert message.from_user is not None
    added = user_id != message.from_user.id and pairing.allow(user_id, by=message.from_user.id)
    await message.answer(texts("allowed" if added else "allowed_already", name=name, user_id=user_id), parse_mode=None)

"""/pair CODE makes the first person with the code the owner; the owner lets others in with /allow and takes them
out with /deny, each followed by a Telegram id or sent as a reply to a forwarded message the person wrote (a
forward alone is an ordinary message to the model). With ALLOWED_USER_IDS set, all three say so."""

from aiogram import Router
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
    elif message.from_user is None or message.from_user.id != pairing.owner():
        await message.answer(texts("owner_only"), parse_mode=None)
    else:
        return False
    return True


async def person_to_change(
    message: Message, command: CommandObject, pairing: Pairing, texts: Texts
) -> tuple[int, str] | None:
    """Whom the owner's /allow or /deny means, as (id, name): the id after it, else the author of the forwarded
    message it replies to. None once the sender is told why not: not the owner, no id, or no person's id shows."""
    if await refused_to_change(message, pairing, texts):
        return None
    if (user_id := user_id_in(command)) is not None:
        return user_id, f"{user_id}"
    replied = message.reply_to_message
    # Words that are no id get the usage even in a reply: "/deny @ada" must not act on the forward instead.
    origin = replied.forward_origin if replied is not None and not command.args else None
    if isinstance(origin, MessageOriginUser) and not origin.sender_user.is_bot:
        sender = origin.sender_user
        return sender.id, f"{sender.full_name} ({sender.id})"
    verb = f"/{command.command}"
    if isinstance(origin, MessageOriginUser):
        said = texts("allow_bot")
    elif isinstance(origin, MessageOriginHiddenUser):
        said = texts("allow_hidden", name=origin.sender_user_name, command=verb)
    elif origin is not None:
        said = texts("allow_not_a_person", command=verb)
    else:
        said = texts(f"{command.command}_usage")
    await message.answer(said, parse_mode=None)
    return None


@router.message(Command("allow"))
async def allow(message: Message, command: CommandObject, pairing: Pairing, texts: Texts) -> None:
    assert message.from_user is not None
    if (person := await person_to_change(message, command, pairing, texts)) is None:
        return
    user_id, name = person
    added = user_id != message.from_user.id and pairing.allow(user_id, by=message.from_user.id)
    await message.answer(texts("allowed" if added else "allowed_already", name=name, user_id=user_id), parse_mode=None)


@router.message(Command("deny"))
async def deny(message: Message, command: CommandObject, pairing: Pairing, texts: Texts) -> None:
    assert message.from_user is not None
    if (person := await person_to_change(message, command, pairing, texts)) is None:
        return
    user_id, name = person
    if user_id == message.from_user.id:
        key = "deny_owner"
    else:
        key = "denied" if pairing.deny(user_id, by=message.from_user.id) else "deny_unknown"
    await message.answer(texts(key, name=name, user_id=user_id), parse_mode=None)

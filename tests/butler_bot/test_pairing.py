"""Owner pairing through the real dispatcher, middlewares and handlers: the one-time code in the log, /pair,
/allow and /deny by id or as a reply to a forwarded message, a forward alone going to the model, the attempt
limits, the store across restarts, and `make pair`'s command; then once through the Bot API emulator, for the
updates' real JSON."""

import asyncio
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import (
    Chat,
    Message,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
    User,
)

from butler_bot import pairing
from butler_bot.app import build_dispatcher
from butler_bot.backends import Backends
from butler_bot.pairing import WRONG_CODES_OVERALL, WRONG_CODES_PER_USER, Pairing
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import SHIPPED_TEXTS, TextBook
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import RecordingSession, recording_bot, release_routers, text_update
from tests.butler_bot.polling import polling
from tests.e2e.emulator import client_post
from tests.mcp_server.conftest import TOKEN, RunningServer

OWNER, GUEST, STRANGER = 801, 802, 803
texts = TextBook(SHIPPED_TEXTS).texts("en")
_ids = itertools.count(50_000)


@dataclass
class PairingBot:
    bot: Bot
    session: RecordingSession
    dp: Dispatcher
    store: BotStore
    pairing: Pairing
    store_path: Path

    async def send(self, user_id: int, text: str, reply_to: Message | None = None, **kwargs: Any) -> list[str]:
        """Deliver one message (a reply to `reply_to`, if given) and return the texts the bot sent in answer."""
        update = text_update(user_id, text, **kwargs)
        if reply_to is not None:
            assert update.message is not None
            update = update.model_copy(
                update={"message": update.message.model_copy(update={"reply_to_message": reply_to})}
            )
        return await self.feed(update)

    async def forward(self, message: Message) -> list[str]:
        return await self.feed(Update(update_id=next(_ids), message=message))

    async def feed(self, update: Update) -> list[str]:
        before = len(self.session.sent())
        await self.dp.feed_update(self.bot, update)
        return [call.text for call in self.session.sent()[before:]]


def forwarded(user_id: int, origin: MessageOrigin, text: str = "see you at eight") -> Message:
    """The message `user_id` sends the bot by forwarding one that came from `origin`."""
    sender = User(id=user_id, is_bot=False, first_name=f"User{user_id}", language_code="en")
    return Message(
        message_id=next(_ids),
        date=datetime.now(UTC),
        chat=Chat(id=user_id, type="private"),
        from_user=sender,
        text=text,
        forward_origin=origin,
    )


@pytest.fixture
async def make_bot(make_settings: Callable[..., BotSettings]) -> AsyncIterator[Callable[..., PairingBot]]:
    """A bot on the test's store file; each call is a fresh start on the same file, as after a restart."""
    made: list[PairingBot] = []

    def build(**overrides: Any) -> PairingBot:
        settings = make_settings(**({"allowed_user_ids": (), "refusal_cooldown_seconds": 0} | overrides))
        store = BotStore.open(settings.store_path, settings.history_turns)
        bot, session = recording_bot()
        release_routers()
        dp = build_dispatcher(settings, store, TextBook(settings.texts_file), Backends(settings, store))
        made.append(PairingBot(bot, session, dp, store, dp.workflow_data["pairing"], settings.store_path))
        return made[-1]

    yield build
    for bot in made:
        await bot.dp.workflow_data["backends"].close()
        bot.store.close()


def code_from_log(pairing: Pairing, caplog: pytest.LogCaptureFixture) -> str:
    """Start the bot's pairing as `main` does and read the code from its one warning, as its owner would."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="butler_bot.pairing"):
        pairing.start()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "make pair" in warnings[0] and "ALLOWED_USER_IDS=<your id>" in warnings[0], (
        f"expected one warning naming make pair and the ALLOWED_USER_IDS way; saw {warnings}"
    )
    found = re.search(r"/pair (\S+)", warnings[0])
    assert found, f"expected the warning to give the code after /pair; saw {warnings[0]!r}"
    return found.group(1)


def user(user_id: int, name: str, *, is_bot: bool = False) -> MessageOriginUser:
    return MessageOriginUser(date=datetime.now(UTC), sender_user=User(id=user_id, is_bot=is_bot, first_name=name))


def warnings_about(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and words in r.getMessage()]


async def test_the_first_to_send_the_logged_code_becomes_the_owner_and_the_code_is_used_up(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    code = code_from_log(bot.pairing, caplog)
    [refusal] = await bot.send(OWNER, "hello")
    assert "no owner yet" in refusal and "/pair" in refusal and str(OWNER) in refusal, refusal
    assert await bot.send(OWNER, f"/pair {code}", chat_id=-100, chat_type="group") == [], (
        "expected no pairing in a group"
    )
    assert await bot.send(OWNER, f"/pairing {code}") == [texts("refusal_unpaired", user_id=OWNER)]

    assert await bot.send(OWNER, f"/pair {code}") == [texts("paired")]
    [help_text] = await bot.send(OWNER, "/help")
    assert help_text.startswith("Just write to me"), f"expected the owner to be served; saw {help_text!r}"
    assert await bot.send(STRANGER, f"/pair {code}") == [texts("refusal_paired", user_id=STRANGER)], (
        "expected a used-up code to let nobody else in"
    )
    assert bot.store.owner() == OWNER and bot.store.pairing_code() is None
    assert await bot.send(OWNER, f"/pair {code}") == [texts("pair_done")]


async def test_a_wrong_code_is_refused_and_the_right_one_works_however_it_is_typed(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    code = code_from_log(bot.pairing, caplog)
    wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    assert await bot.send(OWNER, f"/pair {wrong}") == [texts("pair_wrong")]
    assert await bot.send(OWNER, "/pair") == [texts("pair_usage")]
    assert await bot.send(OWNER, "/pair пароль") == [texts("pair_wrong")], "expected non-ASCII to be just wrong"
    assert bot.store.owner() is None
    assert await bot.send(OWNER, "/help") == [texts("refusal_unpaired", user_id=OWNER)]
    assert await bot.send(OWNER, f"/pair  {code.replace('-', '').lower()} ") == [texts("paired")]


async def test_guessing_is_limited_per_user_and_overall_and_each_limit_is_logged_once(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    code = code_from_log(bot.pairing, caplog)
    wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    for _ in range(WRONG_CODES_PER_USER):
        assert await bot.send(STRANGER, f"/pair {wrong}") == [texts("pair_wrong")]
    assert await bot.send(STRANGER, f"/pair {code}") == [texts("pair_too_many", minutes=15)], (
        "expected the right code refused once locked out"
    )
    assert await bot.send(STRANGER, f"/pair {code}") == [], "expected a locked-out guesser told once, then silence"
    assert len(warnings_about(caplog, f"user {STRANGER} sent {WRONG_CODES_PER_USER} wrong")) == 1, caplog.text

    # More accounts, each within its own limit, until everyone's wrong codes reach the overall limit.
    for guesser in range(STRANGER + 1, STRANGER + WRONG_CODES_OVERALL // WRONG_CODES_PER_USER):
        for _ in range(WRONG_CODES_PER_USER):
            assert await bot.send(guesser, f"/pair {wrong}") == [texts("pair_wrong")]
    assert await bot.send(OWNER, f"/pair {code}") == [texts("pair_paused", minutes=15)], (
        f"expected pairing paused for everyone after {WRONG_CODES_OVERALL} wrong codes"
    )
    assert await bot.send(OWNER, f"/pair {code}") == []
    assert len(warnings_about(caplog, "someone may be guessing")) == 1, caplog.text
    assert bot.store.owner() is None, "expected no owner from a brute force"
    assert bot.store.pairing_code() == code, "expected the code to stay valid for its owner"


async def test_the_owner_lets_people_in_and_out_by_id_or_by_a_reply_to_their_forward(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot()
    await bot.send(OWNER, f"/pair {code_from_log(bot.pairing, caplog)}")
    assert await bot.send(GUEST, "/help") == [texts("refusal_paired", user_id=GUEST)]

    assert await bot.send(OWNER, f"/allow {GUEST}") == [texts("allowed", name=GUEST, user_id=GUEST)]
    [help_text] = await bot.send(GUEST, "/help")
    assert help_text.startswith("Just write to me"), f"expected the guest served after /allow; saw {help_text!r}"
    assert await bot.send(OWNER, f"/allow {GUEST}") == [texts("allowed_already", name=GUEST)]
    assert await bot.send(GUEST, f"/allow {STRANGER}") == [texts("owner_only")], "expected only the owner to allow"
    assert await bot.send(OWNER, "/allow @someone") == [texts("allow_usage")]

    from_ada = forwarded(OWNER, user(STRANGER, "Ada"))
    assert await bot.send(OWNER, "/allow", reply_to=from_ada) == [
        texts("allowed", name=f"Ada ({STRANGER})", user_id=STRANGER)
    ]
    [help_text] = await bot.send(STRANGER, "/help")
    assert help_text.startswith("Just write to me"), f"expected the forward's author let in; saw {help_text!r}"
    assert await bot.send(STRANGER, f"/deny {OWNER}") == [texts("owner_only")], "expected only the owner to deny"
    hidden = forwarded(OWNER, MessageOriginHiddenUser(date=datetime.now(UTC), sender_user_name="Bob"))
    assert await bot.send(OWNER, "/allow", reply_to=hidden) == [texts("allow_hidden", name="Bob", command="/allow")]
    channel = MessageOriginChannel(date=datetime.now(UTC), chat=Chat(id=-1001, type="channel"), message_id=5)
    assert await bot.send(OWNER, "/allow", reply_to=forwarded(OWNER, channel)) == [
        texts("allow_not_a_person", command="/allow")
    ]
    from_a_bot = forwarded(OWNER, user(STRANGER + 100, "Spambot", is_bot=True))
    assert await bot.send(OWNER, "/allow", reply_to=from_a_bot) == [texts("allow_bot")]
    not_a_forward = text_update(OWNER, "see you at eight").message
    assert await bot.send(OWNER, "/allow", reply_to=not_a_forward) == [texts("allow_usage")]
    assert set(bot.store.allowed_users()) == {OWNER, GUEST, STRANGER}, "expected no one let in by those replies"

    assert await bot.send(OWNER, f"/deny {GUEST}") == [texts("denied", name=GUEST)]
    assert await bot.send(GUEST, "/help") == [texts("refusal_paired", user_id=GUEST)], "expected /deny to act at once"
    assert await bot.send(OWNER, f"/deny {GUEST}") == [texts("deny_unknown", name=GUEST)]
    assert await bot.send(OWNER, "/deny @ada", reply_to=from_ada) == [texts("deny_usage")], (
        "expected words that are no id to get the usage, not to act on the forward replied to"
    )
    assert await bot.send(OWNER, "/deny", reply_to=hidden) == [texts("allow_hidden", name="Bob", command="/deny")]
    assert await bot.send(OWNER, "/deny", reply_to=from_ada) == [texts("denied", name=f"Ada ({STRANGER})")]
    assert await bot.send(STRANGER, "/help") == [texts("refusal_paired", user_id=STRANGER)]
    assert await bot.send(OWNER, f"/deny {OWNER}") == [texts("deny_owner")]
    assert bot.store.owner() == OWNER


async def test_the_owners_forward_is_a_message_to_the_model_and_lets_nobody_in(
    make_bot: Callable[..., PairingBot],
    standin: StandIn,
    mcp_server: RunningServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = make_bot(llm_base_url=standin.url, mcp_url=mcp_server.mcp_url, mcp_auth_token=TOKEN)
    await bot.send(OWNER, f"/pair {code_from_log(bot.pairing, caplog)}")
    request = "add this to my tasks: the plumber comes at eight"
    answers = await bot.forward(forwarded(OWNER, user(STRANGER, "Ada"), text=request))
    asked = standin.log[-1]["messages"][-1]["content"] if standin.log else None
    assert asked is not None and request in asked, f"expected the model asked {request!r}; it was asked {asked!r}"
    assert answers and answers[-1].endswith(request), f"expected the model's answer to the forward; saw {answers}"
    assert set(bot.store.allowed_users()) == {OWNER}, "expected a forward alone to let nobody in"
    assert await bot.send(STRANGER, "/help") == [texts("refusal_paired", user_id=STRANGER)]


async def test_the_owner_and_guests_stay_across_a_restart(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    first = make_bot()
    code = code_from_log(first.pairing, caplog)
    await first.send(OWNER, f"/pair {code}")
    await first.send(OWNER, f"/allow {GUEST}")
    first.store.close()

    again = make_bot()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="butler_bot.pairing"):
        again.pairing.start()
    assert warnings_about(caplog, "/pair") == [], f"expected no new code once paired; saw {caplog.text}"
    assert f"{OWNER} (owner), {GUEST} (guest)" in caplog.text, f"expected the start to name who is in: {caplog.text}"
    for user_id in (OWNER, GUEST):
        [help_text] = await again.send(user_id, "/help")
        assert help_text.startswith("Just write to me"), f"expected {user_id} served after a restart; saw {help_text!r}"
    assert await again.send(STRANGER, f"/pair {code}") == [texts("refusal_paired", user_id=STRANGER)]


async def test_allowed_user_ids_stays_authoritative_over_pairing(
    make_bot: Callable[..., PairingBot], caplog: pytest.LogCaptureFixture
) -> None:
    paired = make_bot()
    code = code_from_log(paired.pairing, caplog)
    await paired.send(OWNER, f"/pair {code}")
    paired.store.close()

    configured = make_bot(allowed_user_ids=(GUEST,))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="butler_bot.pairing"):
        configured.pairing.start()
    assert warnings_about(caplog, "/pair") == [] and "ALLOWED_USER_IDS" in caplog.text, caplog.text
    assert await configured.send(OWNER, "/help") == [texts("refusal", user_id=OWNER)], (
        "expected the paired owner refused while ALLOWED_USER_IDS names others"
    )
    for command in (f"/allow {OWNER}", f"/deny {OWNER}", f"/pair {code}"):
        assert await configured.send(GUEST, command) == [texts("access_configured")], command
    [answer] = await configured.send(STRANGER, f"/pair {code}")
    assert answer == texts("refusal", user_id=STRANGER), f"expected a stranger's /pair refused; saw {answer!r}"


# What the bot's container has in its environment; `make pair` must print none of it.
CONTAINER_SECRETS = {
    "TELEGRAM_BOT_TOKEN": "4242:s3cret-bot-token",
    "MCP_AUTH_TOKEN": "s3cret-mcp-token-0123456789",
    "LLM_API_KEY": "s3cret-llm-key",
}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("waiting", "Send this to the bot in Telegram to become its owner: /pair "),
        ("no store", "start the bot"),
        ("configured", "Pairing is off: ALLOWED_USER_IDS is set"),
        ("paired", f"Paired already: Telegram user {OWNER} owns the bot"),
    ],
)
def test_the_make_pair_command_shows_the_code_or_says_why_there_is_none(
    make_bot: Callable[..., PairingBot],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    state: str,
    expected: str,
) -> None:
    bot = make_bot()
    for name, value in CONTAINER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STORE_PATH", str(bot.store_path if state != "no store" else bot.store_path.with_suffix(".x")))
    monkeypatch.setenv("ALLOWED_USER_IDS", "5" if state == "configured" else "")
    code = code_from_log(bot.pairing, caplog)
    if state == "paired":
        bot.store.pair_owner(OWNER)
    # The function `python -m butler_bot.pairing` runs (a process of its own would spend seconds importing aiogram).
    try:
        pairing.main()
    except SystemExit as exc:
        said = str(exc.code)
    else:
        said = "".join(capsys.readouterr())
    assert expected in said, f"expected {expected!r}; saw {said!r}"
    assert (code in said) is (state == "waiting"), f"expected the code shown only while it is waiting; saw {said!r}"
    leaked = [name for name, value in CONTAINER_SECRETS.items() if value.split(":")[-1] in said]
    assert not leaked, f"expected no secret but the code; saw {leaked} in {said!r}"


async def replies(url: str, token: str, user_id: int, text: str, **fields: Any) -> list[str]:
    """`user_id` writes to the bot in the emulator; the bot's answers, waiting up to a minute for the first."""
    await client_post(url, "/sendMessage", {"token": token, "user_id": user_id, "text": text, **fields})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if found := await client_post(url, "/getUpdates", {"token": token, "chat_id": user_id}):
            return [update["message"]["text"] for update in found]
        await asyncio.sleep(0.2)
    return []


async def forwarded_message_id(url: str, token: str, user_id: int) -> int:
    """The id of the newest message `user_id` forwarded to the bot, from the emulator's history, to reply to it."""
    history = await client_post(url, "/getUpdatesHistory", {"token": token})
    ids = [
        item["messageId"]
        for item in history
        if item["message"].get("forward_origin") and item["message"].get("from", {}).get("id") == user_id
    ]
    assert ids, f"expected a forward from {user_id} in the emulator's history; saw {history}"
    return ids[-1]


@pytest.mark.e2e
async def test_pairing_a_forward_and_a_reply_to_it_as_the_bot_api_delivers_them(
    polling_settings: Callable[..., BotSettings], caplog: pytest.LogCaptureFixture
) -> None:
    """The dispatcher polling the Bot API emulator: real updates, a forward_origin and a reply_to_message as
    Telegram's JSON has them."""
    settings = polling_settings(allowed_user_ids=())
    emulator_url, token = settings.telegram_api_url, settings.telegram_bot_token.get_secret_value()
    async with polling(settings) as dp:
        code = code_from_log(dp.workflow_data["pairing"], caplog)
        assert await replies(emulator_url, token, OWNER, "/pair ZZZZ-ZZZ0") == [texts("pair_wrong")]
        assert await replies(emulator_url, token, OWNER, f"/pair {code}") == [texts("paired")]
        origin = {
            "type": "user",
            "date": int(time.time()),
            "sender_user": {"id": GUEST, "is_bot": False, "first_name": "Ada"},
        }
        answers = await replies(emulator_url, token, OWNER, "see you at eight", forward_origin=origin)
        assert answers and answers[-1].endswith("see you at eight"), f"expected the model's answer; saw {answers}"
        [refusal] = await replies(emulator_url, token, GUEST, "/help")
        assert refusal == texts("refusal_paired", user_id=GUEST), (
            f"expected a forward to let nobody in; saw {refusal!r}"
        )

        forward_id = await forwarded_message_id(emulator_url, token, OWNER)
        assert await replies(emulator_url, token, OWNER, "/allow", reply_to_message_id=forward_id) == [
            texts("allowed", name=f"Ada ({GUEST})", user_id=GUEST)
        ]
        [help_text] = await replies(emulator_url, token, GUEST, "/help")
        assert help_text.startswith("Just write to me"), f"expected the forward's author served; saw {help_text!r}"

"""Owner pairing: with ALLOWED_USER_IDS empty, the first person to send the bot its one-time code becomes the
owner, who then lets others in (/allow) and out (/deny), by id or by replying to a message of theirs forwarded
to the bot. The list lives in the bot's store on its volume; ALLOWED_USER_IDS, when set, stays authoritative and
pairing is off.

`python -m butler_bot.pairing` (`make pair`, in the bot's container) prints the code the bot waits for.
"""

import itertools
import logging
import secrets
import sys
from enum import Enum

from cachetools import TTLCache

from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from shared.settings import load_settings

log = logging.getLogger(__name__)

# 8 characters of 32 (no 0/O, 1/I): 40 bits, far beyond what the limits below let anyone try in a lifetime.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# Wrong codes allowed within the lock-out: per user, and from everyone at once (many accounts guessing).
WRONG_CODES_PER_USER = 5
WRONG_CODES_OVERALL = 20
LOCKOUT_SECONDS = 15 * 60
MAX_REMEMBERED_GUESSERS = 10_000


def new_code() -> str:
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalized(code: str) -> bytes:
    """The code as typed, case, spaces and dashes aside; bytes, since compare_digest takes ASCII text only."""
    return "".join(code.split()).replace("-", "").upper().encode()


class PairOutcome(Enum):
    PAIRED = "paired"
    WRONG = "wrong"
    NO_CODE = "no_code"
    USER_LIMITED = "user_limited"
    EVERYONE_LIMITED = "everyone_limited"
    # Limited and told so already: a guesser cannot make the bot answer every message.
    QUIET = "quiet"
    CLOSED = "closed"


class WrongCodes:
    """Wrong codes of the last LOCKOUT_SECONDS: per user (counted from their latest) and from everyone."""

    def __init__(self) -> None:
        self._by_user: TTLCache[int, int] = TTLCache(MAX_REMEMBERED_GUESSERS, LOCKOUT_SECONDS)
        # One entry per wrong code, each expiring on its own: a sliding window over everyone's guesses.
        self._everyone: TTLCache[int, None] = TTLCache(WRONG_CODES_OVERALL, LOCKOUT_SECONDS)
        self._told: TTLCache[int, None] = TTLCache(MAX_REMEMBERED_GUESSERS, LOCKOUT_SECONDS)
        self._ids = itertools.count()

    def limit(self, user_id: int) -> PairOutcome | None:
        """Why `user_id` may not try a code now, or None when they may."""
        if self._by_user.get(user_id, 0) >= WRONG_CODES_PER_USER:
            outcome = PairOutcome.USER_LIMITED
        elif len(self._everyone) >= WRONG_CODES_OVERALL:
            outcome = PairOutcome.EVERYONE_LIMITED
        else:
            return None
        if user_id in self._told:
            return PairOutcome.QUIET
        self._told[user_id] = None
        return outcome

    def count(self, user_id: int) -> None:
        wrong = self._by_user[user_id] = self._by_user.get(user_id, 0) + 1
        self._everyone[next(self._ids)] = None
        minutes = LOCKOUT_SECONDS // 60
        if wrong == WRONG_CODES_PER_USER:
            log.warning(
                "Telegram user %s sent %d wrong pairing codes: their next tries are refused for %d minutes",
                user_id,
                wrong,
                minutes,
            )
        if len(self._everyone) == WRONG_CODES_OVERALL:
            log.warning(
                "%d wrong pairing codes within %d minutes: someone may be guessing; pairing is paused for everyone "
                "until the guesses are %d minutes old (the code stays valid; ALLOWED_USER_IDS in .env needs no code)",
                WRONG_CODES_OVERALL,
                minutes,
                minutes,
            )


class Pairing:
    """Who may use the bot: ALLOWED_USER_IDS when set, else the paired owner and the guests they let in."""

    def __init__(self, allowed_user_ids: tuple[int, ...], store: BotStore) -> None:
        self.configured = frozenset(allowed_user_ids)
        self.store = store
        self.wrong_codes = WrongCodes()

    def allows(self, user_id: int) -> bool:
        return user_id in self.configured if self.configured else self.store.is_allowed(user_id)

    def owner(self) -> int | None:
        return None if self.configured else self.store.owner()

    def is_open(self) -> bool:
        """True while a /pair can still make someone the owner."""
        return not self.configured and self.store.pairing_code() is not None

    def start(self) -> None:
        """Say at start-up who may use the bot; with nobody yet, make the code (once) and log it."""
        paired = self.store.allowed_users()
        if self.configured:
            log.info("users allowed: %s (ALLOWED_USER_IDS)", ", ".join(map(str, sorted(self.configured))))
            if paired:
                log.info("%d users let in by pairing are ignored while ALLOWED_USER_IDS is set", len(paired))
            return
        if paired:
            users = ", ".join(f"{user_id} ({role})" for user_id, role in paired.items())
            log.info("users allowed: %s; the owner changes the list with /allow and /deny", users)
            return
        code = self.store.pairing_code()
        if code is None:
            code = new_code()
            self.store.set_pairing_code(code)
        log.warning(
            "ALLOWED_USER_IDS is empty and the bot has no owner yet: to become its owner, send it /pair %s in "
            "Telegram (make pair shows this code again), or set ALLOWED_USER_IDS=<your id> in .env and restart",
            code,
        )

    def try_code(self, user_id: int, given: str) -> PairOutcome:
        code = self.store.pairing_code() if not self.configured else None
        if code is None:
            return PairOutcome.CLOSED
        if not normalized(given):
            return PairOutcome.NO_CODE
        if limit := self.wrong_codes.limit(user_id):
            return limit
        if not secrets.compare_digest(normalized(given), normalized(code)):
            self.wrong_codes.count(user_id)
            log.info("Telegram user %s sent a wrong pairing code", user_id)
            return PairOutcome.WRONG
        if not self.store.pair_owner(user_id):
            return PairOutcome.CLOSED
        log.warning("Telegram user %s is the owner now: they paired with the code, which is used up", user_id)
        return PairOutcome.PAIRED

    def allow(self, user_id: int, by: int) -> bool:
        """Let `user_id` in; False when they were in already."""
        added = self.store.allow_user(user_id, by)
        if added:
            log.info("Telegram user %s let in by the owner %s", user_id, by)
        return added

    def deny(self, user_id: int, by: int) -> bool:
        """Take a guest out; False when they were not in (the owner cannot be taken out)."""
        removed = self.store.deny_user(user_id)
        if removed:
            log.info("Telegram user %s taken out by the owner %s", user_id, by)
        return removed


def main() -> None:
    """`python -m butler_bot.pairing`: print the code the running bot waits for, from its store; no other secret."""
    settings = load_settings(BotSettings, "butler-bot")
    if settings.allowed_user_ids:
        print("Pairing is off: ALLOWED_USER_IDS is set, so the bot serves exactly those users (change it in .env).")
        return
    if not settings.store_path.exists():
        sys.exit(f"No bot store at {settings.store_path} yet: start the bot, then run make pair again.")
    store = BotStore.open(settings.store_path, settings.history_turns)
    try:
        owner, code = store.owner(), store.pairing_code()
    finally:
        store.close()
    if owner is not None:
        print(
            f"Paired already: Telegram user {owner} owns the bot. "
            "They let others in with /allow <id>, or by forwarding the bot a message from them and replying /allow."
        )
    elif code is None:
        sys.exit("No pairing code yet: the bot makes one when it starts. Is it running (make ps)?")
    else:
        print(f"Send this to the bot in Telegram to become its owner: /pair {code}")


if __name__ == "__main__":
    main()

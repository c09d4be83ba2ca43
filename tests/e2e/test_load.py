"""Load through the whole dev stack (tests/e2e/load.py measures): 50 users chatting at once, 1,000 reminders due at
once. `pytest -s` prints the figures; `make bench` prints them in its table."""

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.load import (
    REMINDER,
    REMINDERS_BOUND,
    load_stack,
    measure_chat_load,
    measure_reminder_load,
    memory_summary,
    peak_memory,
    pending_reminders,
)
from tests.e2e.stack import LOAD_USERS, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", name="load_stack")
def load_stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Its own Compose v2 stack, so peak memory is this module's and no other test's."""
    with load_stack(tmp_path_factory.mktemp("load")) as running:
        yield running


def test_fifty_users_chatting_at_once_are_each_answered_in_their_own_chat(load_stack: Stack) -> None:
    chats = measure_chat_load(load_stack, LOAD_USERS, 10)
    peaks = peak_memory(load_stack)
    print(f"\n{chats.summary()}\npeak memory since start: {memory_summary(peaks)}")
    total = chats.users * chats.per_user
    assert not chats.load.wrong_chat, f"expected every reply in its sender's chat; saw {chats.load.wrong_chat[:5]}"
    errors = chats.arrivals.not_echoes + chats.load.not_echoes
    assert not errors, f"expected every message answered by the model; saw {len(errors)} errors, e.g. {errors[:3]}"
    assert not chats.unanswered, (
        f"expected all {total} messages answered; {len(chats.unanswered)} were not, e.g. {chats.unanswered[:5]}"
    )
    assert chats.answered_in_order == chats.users, (
        f"expected each of {chats.users} users answered once per message, in order; {chats.answered_in_order} were"
    )
    assert "Traceback" not in load_stack.logs("butler-bot"), "expected no error in the bot's log under load"


def test_a_thousand_reminders_due_in_the_same_minute_each_arrive_once(load_stack: Stack) -> None:
    load = measure_reminder_load(load_stack, LOAD_USERS, 20, REMINDERS_BOUND)
    peaks = peak_memory(load_stack)
    print(f"\n{load.summary()}\npeak memory since start: {memory_summary(peaks)}")
    expected = Counter((user_id, f"{REMINDER}due {user_id} #{n}") for user_id in LOAD_USERS for n in range(20))
    missing = list((expected - load.delivered).elements())
    extra = list((load.delivered - expected).elements())
    assert not missing and not extra, (
        f"expected each of {load.count} reminders once, in its owner's chat, within {REMINDERS_BOUND}; "
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} duplicated or misplaced (e.g. {extra[:3]})"
    )
    left = {user_id: count for user_id, count in pending_reminders(load_stack, LOAD_USERS).items() if count}
    assert not left, f"expected no reminder still pending on the server; saw {left}"

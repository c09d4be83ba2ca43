"""The whole stack with a real model: the emulator plays Telegram, mistral serves SmolLM2-135M-Instruct.

A 135M model does not choose well, so these tests hold the plumbing and the bounds, not the wisdom: the answer
comes from the model (not a fixed text), streams into a draft first, stays within LLM_MAX_TOKENS, and a follow-up
makes llama-server evaluate only the new turn, the rest coming from its prompt cache.
"""

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.stack import BASE_FILE, DEV_FILE, Stack, compose_available, copy_worktree, wait_until
from tests.e2e.telegram_user import chat_user

pytestmark = pytest.mark.e2e

OWNER = 4242
MAX_TOKENS = 40
# On 2 shared cores a cold prompt with every tool takes SmolLM2 a minute at worst; generous by design.
ANSWER_TIMEOUT = 300
FIXED_TEXTS = ("language model is not ready", "did not answer in time", "returned an error", "could not finish")
ANSWER_LOG = re.compile(r"chat (\d+): answered .*, prompt (\d+) tokens, (\d+) evaluated anew")


@dataclass
class RealModelStack(Stack):
    """The dev stack as a developer runs it, with the bot asking the mistral service itself."""

    model_file: str = "smollm2.gguf"

    @property
    def env(self) -> dict[str, str]:
        return super().env | {
            "LLM_BASE_URL": "http://mistral:8080/v1",
            "LLM_TIMEOUT": str(ANSWER_TIMEOUT),
            "LLM_MAX_TOKENS": str(MAX_TOKENS),
            "MISTRAL_MODEL_FILE": self.model_file,
            "MISTRAL_CTX_SIZE": "8192",
            "MISTRAL_THREADS": "2",
        }


@pytest.fixture(scope="module")
def real_stack(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> Iterator[RealModelStack]:
    assert compose_available(["docker", "compose"]), "expected Compose v2 (see .ci/run)"
    workdir = copy_worktree(tmp_path_factory.mktemp("real-stack"))
    running = RealModelStack(workdir=workdir, compose=["docker", "compose"], files=[BASE_FILE, DEV_FILE])
    running.run("build", timeout=1800)
    try:
        running.run("up", "-d")
        target = f"{running.container_id('mistral')}:/models/{running.model_file}"
        subprocess.run(["docker", "cp", str(smollm2), target], check=True, timeout=120)
        running.wait_healthy("mcp-server", "telegram-emulator", "butler-bot", timeout=180)
        running.wait_healthy("mistral", timeout=300)
        yield running
    finally:
        running.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def answer_counts(stack: Stack, count: int) -> list[tuple[int, int]]:
    """(prompt tokens, tokens evaluated anew) of the owner's first `count` answers, from the bot's log."""

    def logged() -> list[tuple[int, int]] | None:
        found = [(int(p), int(e)) for c, p, e in ANSWER_LOG.findall(stack.logs("butler-bot")) if int(c) == OWNER]
        return found if len(found) >= count else None

    return wait_until(logged, 30, f"{count} answer lines for chat {OWNER} in the bot's log")


def test_the_owner_gets_a_streamed_bounded_answer_and_a_cheap_follow_up(real_stack: RealModelStack) -> None:
    owner = chat_user(real_stack, OWNER)

    [first] = owner.ask("Hello! Who are you?", timeout=ANSWER_TIMEOUT)
    assert first.strip() and not any(text in first for text in FIXED_TEXTS), f"expected the model's words: {first!r}"
    drafts = owner.drafts()
    assert drafts, "expected the answer to show as a draft while the model wrote it"
    # MAX_TOKENS tokens are at most a few characters each, plus the note that the answer was cut.
    assert len(first) < MAX_TOKENS * 12 + 100, f"expected an answer within {MAX_TOKENS} tokens, saw {len(first)} chars"

    [second] = owner.ask("Thank you. And what is on my list today?", timeout=ANSWER_TIMEOUT)
    assert second.strip() and not any(text in second for text in FIXED_TEXTS), second
    (first_prompt, _), (second_prompt, second_evaluated) = answer_counts(real_stack, 2)[:2]
    assert first_prompt > 1000, f"expected the first prompt to carry every tool, saw {first_prompt} tokens"
    assert second_evaluated <= 500, (
        f"expected the follow-up to re-evaluate at most 500 of its {second_prompt} prompt tokens "
        f"(the rest from llama-server's cache), saw {second_evaluated}"
    )

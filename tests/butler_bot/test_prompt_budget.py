"""The first message's prompt, as Mistral-7B-Instruct-v0.3 reads it, fits what a CPU can afford to re-read."""

from datetime import UTC, datetime
from typing import Any

from mcp.types import Tool

from bench.mistral_tokens import count_tokens, request_tokens, tokens_beyond_prefix
from butler_bot.prompt import SystemPrompt, stamped
from butler_bot.texts import WatchedFile
from butler_bot.tool_schemas import openai_tools
from tests.butler_bot.test_tool_schemas import server_tools  # noqa: F401 (a fixture)
from tests.e2e.stack import REPO_ROOT

# The bound for the first message with every tool enabled; the wording aims lower, to leave room.
BUDGET = 1500
PROMPT_FILE = REPO_ROOT / "config" / "butler_bot_prompt.md"
TIMEZONE = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def first_request(tools: list[Tool]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The messages and tools of a user's first message, built as the bot builds them."""
    system = SystemPrompt(WatchedFile(PROMPT_FILE)).render(timezone=TIMEZONE, language="en", now=NOW)
    user = stamped("Remind me to call mum tomorrow at 9", timezone=TIMEZONE, now=NOW)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], openai_tools(tools)


def costs(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, int]:
    """What each part adds to the prompt: each tool, and the system prompt, counted by leaving it out."""
    total = count_tokens(messages, tools)
    parts = {"system prompt": total - count_tokens(messages[1:], tools)}
    for tool in tools:
        others = [other for other in tools if other is not tool]
        parts[tool["function"]["name"]] = total - count_tokens(messages, others)
    return parts


def test_the_first_message_with_every_tool_fits_the_budget(server_tools: list[Tool]) -> None:  # noqa: F811
    messages, tools = first_request(server_tools)
    total = count_tokens(messages, tools)
    breakdown = ", ".join(f"{name} {tokens}" for name, tokens in costs(messages, tools).items())
    assert total <= BUDGET, f"expected at most {BUDGET} prompt tokens, counted {total}: {breakdown}"


def test_the_count_covers_every_part_of_the_request(server_tools: list[Tool]) -> None:  # noqa: F811
    messages, tools = first_request(server_tools)
    assert len(tools) == len(server_tools) == 14, f"expected all 14 tools enabled, got {len(tools)}"
    without_tools, without_system = count_tokens(messages), count_tokens(messages[1:], tools)
    total = count_tokens(messages, tools)
    assert total - without_tools > 50 * len(tools), f"expected the tools to be counted: {total} vs {without_tools}"
    assert total - without_system > 100, f"expected the system prompt to be counted: {total} vs {without_system}"


def test_follow_ups_in_the_first_turn_layout_add_only_their_new_messages(server_tools: list[Tool]) -> None:  # noqa: F811
    first, tools = first_request(server_tools)
    call = {"id": "a1b2c3d4e", "type": "function", "function": {"name": "reminders_create", "arguments": "{}"}}
    tool_step = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "name": "reminders_create", "content": '{"id": 1}'},
    ]
    next_turn = [*tool_step, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Thanks!"}]
    assert request_tokens(first, tools, first_turn=True) == request_tokens(first, tools), (
        "expected one user turn to read the same in both layouts"
    )

    def re_read(first_turn: bool) -> int:
        before, after = (request_tokens(messages, tools, first_turn=first_turn) for messages in (tool_step, next_turn))
        return tokens_beyond_prefix(before, after)

    assert re_read(first_turn=True) <= 60, f"expected a new turn to add at most 60 tokens, counted {re_read(True)}"
    # Mistral's own layout moves the tools and the system prompt to the new last user message.
    assert re_read(first_turn=False) > count_tokens(first, tools) // 2, f"expected most re-read: {re_read(False)}"

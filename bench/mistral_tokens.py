"""Token counts of chat requests as Mistral-7B-Instruct-v0.3 reads them: Mistral's own v3 tokenizer, offline.

mistral-common encodes a request the way the model was trained on and tokenizes it with the v3 SentencePiece
model it ships. Messages and tools are in the OpenAI format the bot sends to llama-server; tool call ids must
be 9 letters or digits, as Mistral's format (and its chat templates) require.

Two layouts of the same tokens:
- Mistral's own: the tools and the system prompt go before the last user message, so each new user message
  moves them and a prompt cache reuses nothing after the first turn.
- `first_turn=True`: they go in the first user turn, as mistral/templates/mistral-v3-tools.jinja puts them,
  so every request of a conversation starts with the previous one and the cache reuses it.

    from bench.mistral_tokens import request_tokens, tokens_beyond_prefix
    before = request_tokens(messages, tools, first_turn=True)
    after = request_tokens(messages + new_messages, tools, first_turn=True)
    re_read = tokens_beyond_prefix(before, after)
"""

from functools import cache
from typing import Any

from mistral_common.protocol.instruct.messages import UserMessage
from mistral_common.protocol.instruct.normalize import get_normalizer
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.tool_calls import Tool
from mistral_common.protocol.instruct.validator import ValidationMode, get_validator
from mistral_common.tokens.tokenizers.instruct import InstructTokenizerV3
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer


class FirstTurnInstructTokenizer(InstructTokenizerV3):
    """Mistral's v3 encoding, with the tools and the system prompt in the first user turn instead of the last."""

    def encode_user_message(
        self,
        message: UserMessage,
        available_tools: list[Tool] | None,
        is_last: bool,
        is_first: bool,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        return super().encode_user_message(message, available_tools, is_first, is_first, *args, **kwargs)


@cache
def v3_tokenizer(*, first_turn: bool = False) -> MistralTokenizer:
    reference = MistralTokenizer.v3()
    if not first_turn:
        return reference
    raw = reference.instruct_tokenizer.tokenizer
    return MistralTokenizer(
        FirstTurnInstructTokenizer(raw),
        get_validator(raw.version, mode=ValidationMode.test),
        get_normalizer(raw.version, raw.model_settings_builder),
    )


def request_tokens(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, *, first_turn: bool = False
) -> list[int]:
    """The prompt's token ids, from `<s>` to the last `[/INST]` (or the last tool result)."""
    request = ChatCompletionRequest.from_openai(messages, tools or None)
    return v3_tokenizer(first_turn=first_turn).encode_chat_completion(request).tokens


def count_tokens(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, *, first_turn: bool = False
) -> int:
    return len(request_tokens(messages, tools, first_turn=first_turn))


def tokens_beyond_prefix(previous: list[int], current: list[int]) -> int:
    """How many of `current`'s tokens come after the prefix it shares with `previous`: what a cache cannot reuse."""
    shared = 0
    for before, now in zip(previous, current, strict=False):
        if before != now:
            break
        shared += 1
    return len(current) - shared

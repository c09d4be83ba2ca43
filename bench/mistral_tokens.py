"""Token counts of chat requests as Mistral-7B-Instruct-v0.3 reads them: Mistral's own v3 tokenizer, offline.

mistral-common renders a request the way the model was trained on (tools in `[AVAILABLE_TOOLS]` before the
last user message, the system prompt inside it) and tokenizes it with the v3 SentencePiece model it ships.
Messages and tools are in the OpenAI format the bot sends to llama-server.

    from bench.mistral_tokens import request_tokens, tokens_beyond_prefix
    first = request_tokens(messages, tools)
    new = tokens_beyond_prefix(first, request_tokens(messages + more, tools))
"""

from functools import cache
from typing import Any

from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer


@cache
def v3_tokenizer() -> MistralTokenizer:
    return MistralTokenizer.v3()


def request_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
    """The prompt's token ids, from `<s>` to the last `[/INST]` (or the last tool result)."""
    request = ChatCompletionRequest.from_openai(messages, tools or None)
    return v3_tokenizer().encode_chat_completion(request).tokens


def count_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    return len(request_tokens(messages, tools))


def tokens_beyond_prefix(previous: list[int], current: list[int]) -> int:
    """How many of `current`'s tokens come after the prefix it shares with `previous`: what a cache cannot reuse."""
    shared = 0
    for before, now in zip(previous, current, strict=False):
        if before != now:
            break
        shared += 1
    return len(current) - shared

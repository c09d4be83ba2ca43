"""How much chat history fits the model's context: sizes estimated from characters, history cut in blocks.

Cutting a block of old turns at once, rather than one turn per message, keeps the prompt's prefix the same
for several messages in a row, so llama-server re-reads only the new turn from its prompt cache.
"""

import json
import math
from dataclasses import dataclass
from typing import Any

# Before the server has told us a real count: few enough characters per token for Cyrillic text and JSON.
FIRST_CHARS_PER_TOKEN = 2.5


def size(payload: Any) -> int:
    return len(json.dumps(payload, ensure_ascii=False))


@dataclass
class TokenBudget:
    context_tokens: int
    # Room kept free in the context: the answer (max_tokens) and one tool result.
    reserve_chars: int
    answer_tokens: int
    chars_per_token: float = FIRST_CHARS_PER_TOKEN
    # Whether a real count has been seen: until then the estimate errs long, and a cut is not worth keeping.
    calibrated: bool = False

    def tokens(self, payload: Any) -> int:
        return math.ceil(size(payload) / self.chars_per_token)

    def learn(self, payload: Any, prompt_tokens: int | None) -> None:
        """Calibrate on a request whose real prompt size the server reported (with a margin of a tenth)."""
        if prompt_tokens:
            self.chars_per_token = min(max(size(payload) / prompt_tokens / 1.1, 1.5), 5.0)
            self.calibrated = True

    def turns_to_keep(self, fixed: Any, turns: list[list[dict[str, Any]]]) -> int:
        """How many of the newest turns fit beside `fixed` (system prompt, tools, new message); cut by thirds."""
        reserve = self.answer_tokens + self.reserve_chars / self.chars_per_token
        available = self.context_tokens - reserve - self.tokens(fixed)
        keep = len(turns)
        while keep and self.tokens(turns[-keep:]) > available:
            keep -= math.ceil(keep / 3)
        return keep

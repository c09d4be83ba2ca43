"""What the agent, the model client and the tool client agree on: errors, results and protocols.

A leaf module with no third-party imports: the agent depends on it, and so do the MCP and LLM clients, so
neither client is imported by the agent and none of them imports another.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Failure = Literal["model_not_ready", "model_too_slow", "model_error", "prompt_too_long"]


class ToolsUnavailable(Exception):
    """The MCP server cannot be reached or failed the call."""


class ModelUnavailable(Exception):
    """The model gave no usable answer; `reason` names the text the user gets."""

    def __init__(self, reason: Failure, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Failure = reason


class PromptTooLong(ModelUnavailable):
    """The server refused a prompt over its context; llama-server says how long it was and how much fits."""

    def __init__(self, detail: str, *, prompt_tokens: int | None, context_tokens: int | None) -> None:
        super().__init__("prompt_too_long", detail)
        self.prompt_tokens = prompt_tokens
        self.context_tokens = context_tokens


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool
    data: dict[str, Any] | None


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the model sees it (an OpenAI function tool), and whether calling it changes anything."""

    name: str
    function: dict[str, Any]
    read_only: bool

    def wire(self) -> dict[str, Any]:
        return {"type": "function", "function": self.function}


@dataclass(frozen=True)
class RequestedCall:
    """A tool call as the model wrote it: the arguments are still the raw JSON text."""

    name: str
    arguments: str


@dataclass
class ModelTurn:
    """One completed model request: its text, the tool calls it asked for, and how it ended."""

    content: str
    tool_calls: list[RequestedCall] = field(default_factory=list)
    # "stop", "tool_calls", "length", or None when the server did not say.
    finish_reason: str | None = None
    # Prompt tokens the request cost in all; of these, how many the server evaluated anew (llama-server's
    # timings.prompt_n) rather than reused from its cache. None when the server does not report them.
    prompt_tokens: int | None = None
    prompt_evaluated: int | None = None


@dataclass(frozen=True)
class ServerLimits:
    """What the model server can do, as far as it tells (llama-server's /props); None where it does not."""

    context_tokens: int | None
    supports_tools: bool


# Called with the answer so far while the model writes it; also how the model client reports liveness.
TextSink = Callable[[str], Awaitable[None]]


class ChatModel(Protocol):
    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, final: bool, on_text: TextSink
    ) -> ModelTurn: ...


class Toolbox(Protocol):
    async def specs(self) -> list[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...

    def forget_tools(self) -> None: ...


class Progress(Protocol):
    """Where a chat sees the work: the answer growing, and a line for each tool step."""

    async def text(self, so_far: str) -> None: ...

    async def tool(self, name: str) -> None: ...

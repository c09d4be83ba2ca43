"""The agent loop: ask the model, run the tools it asks for as the user, repeat until it answers.

What goes over the wire suits llama.cpp's llama-server, vLLM and Mistral's API alike: every tool-call id is
rewritten to 9 alphanumeric characters (Mistral's chat templates refuse anything else), every message has
string content (never null), and tool-call arguments are echoed back as valid JSON objects.
"""

import json
import logging
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcp.types import Tool

from butler_bot.backends import ToolsUnavailable
from butler_bot.tools import ToolResult

log = logging.getLogger(__name__)

TOOL_CALL_ID_ALPHABET = string.ascii_letters + string.digits
TOOLS_DOWN_NOTE = (
    "Your tools are unavailable right now. Do not claim to have saved, changed, listed or scheduled anything; "
    "say that it could not be done now."
)
TOOL_SERVER_DOWN = "Error: the tool server is unreachable; the request was not carried out. Tell the user."


def new_tool_call_id() -> str:
    return "".join(secrets.choice(TOOL_CALL_ID_ALPHABET) for _ in range(9))


class ModelAnswer(Protocol):
    content: str | None
    tool_calls: Any


class ChatCompleter(Protocol):
    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, final: bool = False
    ) -> ModelAnswer: ...


class Toolbox(Protocol):
    async def list(self) -> list[Tool]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...

    def forget_tools(self) -> None: ...


@dataclass
class AgentReply:
    text: str
    steps: int
    tools_unavailable: bool = False
    exhausted: bool = False
    tools_called: list[str] = field(default_factory=list)


def tool_specs(tools: list[Tool]) -> list[dict[str, Any]]:
    """MCP tools as OpenAI function tools; the schema never holds the user id (the server reads it from a header)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or tool.title or tool.name,
                "parameters": tool.input_schema or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] | None
    problem: str | None

    @classmethod
    def from_model(cls, call: Any) -> "ToolCall":
        function = getattr(call, "function", None)
        name = str(getattr(function, "name", "") or "")
        raw = getattr(function, "arguments", None) or "{}"
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            return cls(new_tool_call_id(), name, None, f"the arguments were not valid JSON ({exc.msg})")
        if not isinstance(arguments, dict):
            return cls(new_tool_call_id(), name, None, "the arguments must be a JSON object")
        return cls(new_tool_call_id(), name, arguments, None)

    def wire(self) -> dict[str, Any]:
        arguments = json.dumps(self.arguments if self.arguments is not None else {}, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


class AgentRun:
    def __init__(self, model: ChatCompleter, toolbox: Toolbox, *, max_steps: int, result_max_chars: int = 6000) -> None:
        self.model = model
        self.toolbox = toolbox
        self.max_steps = max_steps
        self.result_max_chars = result_max_chars
        self.known_tools: set[str] = set()
        self.tools_called: list[str] = []
        self.tool_server_failed = False

    async def answer(self, system_prompt: str, history: list[dict[str, Any]], user_text: str) -> AgentReply:
        try:
            tools = await self.toolbox.list()
        except ToolsUnavailable as exc:
            log.warning("tools unavailable, answering without them: %s", exc)
            tools, self.tool_server_failed = [], True
        self.known_tools = {tool.name for tool in tools}
        if self.tool_server_failed:
            system_prompt = f"{system_prompt}\n\n{TOOLS_DOWN_NOTE}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt},
            *history,
            {"role": "user", "content": user_text},
        ]
        specs = tool_specs(tools)
        for step in range(1, self.max_steps + 1):
            final = step == self.max_steps
            answer = await self.model.complete(messages, specs, final=final)
            calls = [ToolCall.from_model(call) for call in answer.tool_calls or []]
            if not calls or final:
                return self._reply(answer.content, step, exhausted=bool(calls))
            messages.append(
                {"role": "assistant", "content": answer.content or "", "tool_calls": [c.wire() for c in calls]}
            )
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": await self._run(call)})
        raise AssertionError("unreachable: the last step always returns")

    async def _run(self, call: ToolCall) -> str:
        self.tools_called.append(call.name)
        if call.name not in self.known_tools:
            self.toolbox.forget_tools()
            available = ", ".join(sorted(self.known_tools)) or "none right now"
            log.info("the model called an unknown tool %r", call.name)
            return f"Error: there is no tool named {call.name!r}. Available tools: {available}."
        if call.arguments is None:
            log.info("the model called %s with bad arguments: %s", call.name, call.problem)
            return f"Error: {call.problem}. Call {call.name} again with a JSON object of its parameters."
        try:
            result = await self.toolbox.call(call.name, call.arguments)
        except ToolsUnavailable as exc:
            log.warning("tool %s failed: %s", call.name, exc)
            self.tool_server_failed = True
            return TOOL_SERVER_DOWN
        text = f"Error: {result.text}" if result.is_error else result.text
        if len(text) > self.result_max_chars:
            text = text[: self.result_max_chars] + " … (cut: ask for less)"
        return text

    def _reply(self, content: str | None, step: int, *, exhausted: bool) -> AgentReply:
        if exhausted:
            log.warning("the model still asked for tools after %s steps", step)
        return AgentReply(
            text=(content or "").strip(),
            steps=step,
            tools_unavailable=self.tool_server_failed,
            exhausted=exhausted,
            tools_called=self.tools_called,
        )

"""The agent loop: ask the model, run the tools it asks for as the user, repeat until it answers.

What goes over the wire suits llama.cpp's llama-server, vLLM and Mistral's API alike: every tool-call id is
rewritten to 9 alphanumeric characters (Mistral's chat templates refuse anything else), every message has
string content (never null), tool-call arguments are echoed back as valid JSON objects, and each tool result
is a tool message with the tool's name and call id.
"""

import asyncio
import json
import logging
import math
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from butler_bot.budget import TokenBudget
from butler_bot.core import (
    ChatModel,
    ModelTurn,
    ModelUnavailable,
    Progress,
    PromptTooLong,
    RequestedCall,
    Toolbox,
    ToolSpec,
    ToolsUnavailable,
)

log = logging.getLogger(__name__)

TOOL_CALL_ID_ALPHABET = string.ascii_letters + string.digits
# Mistral's marker for tool calls: text that holds it is a tool call gone astray, never an answer.
TOOL_CALL_MARKUP = "[TOOL_CALLS]"
TOOLS_DOWN_NOTE = (
    "Your tools are unavailable right now. Do not claim to have saved, changed, listed or scheduled anything; "
    "say that it could not be done now."
)
TOOL_SERVER_DOWN = "the tool server is unreachable; the request was not carried out. Tell the user."
# The clock the bot puts before each user message ("[09:30] …"); a model may copy it to the start of its answer.
COPIED_STAMP = re.compile(r"^\s*\[\d{1,2}:\d{2}\]\s*")
# What a copied clock looks like while it is still streaming in.
STAMP_SO_FAR = re.compile(r"^\s*\[\d{0,2}(:\d{0,2})?$")
# The MCP SDK words a failed tool as "Error executing tool NAME: reason"; the model gets the reason once.
SDK_ERROR_PREFIX = re.compile(r"^(Error executing tool \S+: )+")


def new_tool_call_id() -> str:
    return "".join(secrets.choice(TOOL_CALL_ID_ALPHABET) for _ in range(9))


def error_text(reason: str) -> str:
    """A tool error as the model reads it: marked once, whatever the server wrapped it in."""
    reason = SDK_ERROR_PREFIX.sub("", reason.strip())
    return reason if reason.startswith("Error: ") else f"Error: {reason}"


def visible_text(content: str) -> str:
    """The part of streamed text the user may see: no copied clock, nothing from a tool-call marker on."""
    if STAMP_SO_FAR.match(content):
        return ""
    content = COPIED_STAMP.sub("", content)
    at = content.find(TOOL_CALL_MARKUP)
    if at >= 0:
        return content[:at]
    tail = content.rstrip()
    for size in range(min(len(TOOL_CALL_MARKUP) - 1, len(tail)), 0, -1):
        if TOOL_CALL_MARKUP.startswith(tail[-size:]):
            return content[: len(tail) - size]
    return content


@dataclass
class AgentReply:
    # What the user sees.
    text: str
    steps: int
    tools_unavailable: bool = False
    exhausted: bool = False
    # The model hit max_tokens: the text is cut short.
    truncated: bool = False
    tools_called: list[str] = field(default_factory=list)
    # How many of the newest history turns fitted the context; the older ones can go.
    kept_turns: int = 0
    # The last request's prompt size, and the prompt tokens the server evaluated anew over the whole run.
    prompt_tokens: int | None = None
    prompt_evaluated: int | None = None
    # The answer as the model wrote it: kept as history, it matches what llama-server has cached.
    said: str = ""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] | None
    problem: str | None

    @classmethod
    def parse(cls, call: RequestedCall) -> "ToolCall":
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return cls(new_tool_call_id(), call.name, None, f"the arguments were not valid JSON ({exc.msg})")
        if not isinstance(arguments, dict):
            return cls(new_tool_call_id(), call.name, None, "the arguments must be a JSON object")
        return cls(new_tool_call_id(), call.name, arguments, None)

    def wire(self) -> dict[str, Any]:
        arguments = json.dumps(self.arguments if self.arguments is not None else {}, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}

    @property
    def key(self) -> str:
        return json.dumps([self.name, self.arguments], sort_keys=True, ensure_ascii=False)


class AgentRun:
    """One answer to one user message. `timeout` bounds the whole run; streamed text restarts the clock."""

    def __init__(
        self,
        model: ChatModel,
        toolbox: Toolbox,
        progress: Progress,
        budget: TokenBudget,
        *,
        max_steps: int,
        timeout: float,
        result_max_chars: int = 6000,
        tools_supported: bool = True,
    ) -> None:
        self.model = model
        self.toolbox = toolbox
        self.progress = progress
        self.budget = budget
        self.max_steps = max_steps
        self.timeout = timeout
        self.result_max_chars = result_max_chars
        self.tools_supported = tools_supported
        self.specs: dict[str, ToolSpec] = {}
        self.tools_called: list[str] = []
        self.tool_server_failed = False
        # Results of calls that change something, by name and arguments: a repeat in this run does not run again.
        self._side_effects: dict[str, str] = {}
        self._shown = ""
        self._kept_turns = 0
        self._prompt_tokens: int | None = None
        self._prompt_evaluated: int | None = None

    async def answer(self, system_prompt: str, turns: list[list[dict[str, Any]]], user_text: str) -> AgentReply:
        """Answer `user_text` after the newest of the earlier `turns` that fit the context."""
        try:
            async with asyncio.timeout(self.timeout) as self._deadline:
                return await self._answer(system_prompt, turns, user_text)
        except TimeoutError:
            raise ModelUnavailable("model_too_slow", f"no progress for {self.timeout:g} s") from None

    async def _answer(self, system_prompt: str, turns: list[list[dict[str, Any]]], user_text: str) -> AgentReply:
        specs = await self._tool_specs()
        if not specs:
            system_prompt = f"{system_prompt}\n\n{TOOLS_DOWN_NOTE}"
        system = {"role": "system", "content": system_prompt}
        user = {"role": "user", "content": user_text}
        wire_specs = [spec.wire() for spec in specs]
        for step in range(1, self.max_steps + 1):
            final = step == self.max_steps
            self._shown = ""
            if step == 1:
                messages, turn = await self._first_request(system, turns, user, wire_specs, final=final)
            else:
                turn = await self.model.complete(messages, wire_specs, final=final, on_text=self._streamed)
            self.budget.learn([messages, wire_specs], turn.prompt_tokens)
            self._count(turn)
            stray_markup = TOOL_CALL_MARKUP in turn.content
            if final and (turn.tool_calls or stray_markup):
                log.warning("the model still asked for tools after %s steps", step)
                return self._reply("", step, exhausted=True)
            if stray_markup:
                # llama-server hands back tool-call markup it could not parse as text: never show it.
                log.warning("the model wrote a tool call that could not be parsed: %.200s", turn.content)
                return self._reply("", step, exhausted=True)
            if not turn.tool_calls:
                return self._reply(turn.content, step, truncated=turn.finish_reason == "length")
            calls = [ToolCall.parse(call) for call in turn.tool_calls]
            messages.append({"role": "assistant", "content": turn.content, "tool_calls": [c.wire() for c in calls]})
            for call in calls:
                content = await self._run(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content})
        raise AssertionError("unreachable: the last step always returns")

    async def _first_request(
        self,
        system: dict[str, Any],
        turns: list[list[dict[str, Any]]],
        user: dict[str, Any],
        wire_specs: list[dict[str, Any]],
        *,
        final: bool,
    ) -> tuple[list[dict[str, Any]], ModelTurn]:
        """The first request, after the newest turns that fit; if the server still finds it too long, fewer."""
        keep = self.budget.turns_to_keep([system, user, wire_specs], turns)
        while True:
            self._kept_turns = keep
            messages = [system, *(message for turn in turns[len(turns) - keep :] for message in turn), user]
            try:
                return messages, await self.model.complete(messages, wire_specs, final=final, on_text=self._streamed)
            except PromptTooLong as exc:
                if keep == 0:
                    raise
                # The server's own counts make the estimate right for this message and the next ones.
                self.budget.context_tokens = exc.context_tokens or self.budget.context_tokens
                self.budget.learn([messages, wire_specs], exc.prompt_tokens)
                keep = min(self.budget.turns_to_keep([system, user, wire_specs], turns), keep - math.ceil(keep / 3))

    def _count(self, turn: ModelTurn) -> None:
        self._prompt_tokens = turn.prompt_tokens
        if turn.prompt_evaluated is not None:
            self._prompt_evaluated = (self._prompt_evaluated or 0) + turn.prompt_evaluated

    async def _tool_specs(self) -> list[ToolSpec]:
        if not self.tools_supported:
            return []
        try:
            specs = await self.toolbox.specs()
        except ToolsUnavailable as exc:
            log.warning("tools unavailable, answering without them: %s", exc)
            self.tool_server_failed = True
            return []
        self.specs = {spec.name: spec for spec in specs}
        return specs

    async def _streamed(self, content: str) -> None:
        """Every streamed chunk: the model is alive, so the clock restarts; new visible text goes to the chat."""
        self._deadline.reschedule(asyncio.get_running_loop().time() + self.timeout)
        shown = visible_text(content).strip()
        if shown and shown != self._shown:
            self._shown = shown
            await self.progress.text(shown)

    async def _run(self, call: ToolCall) -> str:
        self.tools_called.append(call.name)
        spec = self.specs.get(call.name)
        if spec is None:
            self.toolbox.forget_tools()
            available = ", ".join(sorted(self.specs)) or "none right now"
            log.info("the model called an unknown tool %r", call.name)
            return error_text(f"there is no tool named {call.name!r}. Available tools: {available}.")
        if call.arguments is None:
            log.info("the model called %s with bad arguments: %s", call.name, call.problem)
            return error_text(f"{call.problem}. Call {call.name} again with a JSON object of its parameters.")
        if not spec.read_only and call.key in self._side_effects:
            log.info("the model repeated %s with the same arguments; it ran once", call.name)
            return self._side_effects[call.key]
        await self.progress.tool(call.name)
        try:
            result = await self.toolbox.call(call.name, call.arguments)
        except ToolsUnavailable as exc:
            log.warning("tool %s failed: %s", call.name, exc)
            self.tool_server_failed = True
            return error_text(TOOL_SERVER_DOWN)
        text = error_text(result.text) if result.is_error else result.text
        if len(text) > self.result_max_chars:
            text = text[: self.result_max_chars] + " … (cut: ask for less)"
        if not spec.read_only and not result.is_error:
            self._side_effects[call.key] = text
        return text

    def _reply(self, content: str, step: int, *, exhausted: bool = False, truncated: bool = False) -> AgentReply:
        return AgentReply(
            text=COPIED_STAMP.sub("", content).strip(),
            said=content.strip(),
            steps=step,
            tools_unavailable=self.tool_server_failed,
            exhausted=exhausted,
            truncated=truncated,
            tools_called=self.tools_called,
            kept_turns=self._kept_turns,
            prompt_tokens=self._prompt_tokens,
            prompt_evaluated=self._prompt_evaluated,
        )

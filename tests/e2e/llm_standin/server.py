"""A scripted stand-in for llama.cpp's llama-server: it answers from a script, in llama-server's shapes, and logs.

Run it with `python server.py` (HOST, default 0.0.0.0; PORT, default 8080). Only aiohttp is needed, so the bot image
can run it. tests/e2e/test_llm_standin_parity.py holds it to the real llama-server (the mistral image).

    POST /v1/chat/completions   answers from the script (below), streamed (`stream: true`) or not, with llama-server's
                                chunks, `timings`, `usage`, finish reasons, errors and chat-template refusals
    POST /apply-template        {"prompt": "..."}: the messages in the shipped template's Mistral v3 markup
    POST /tokenize              {"tokens": [...]}; a stand-in token is a word, a punctuation mark or a control tag,
                                so counts are rough, but they are the counts the context check and `usage` use
    GET  /props, /v1/models, /health
    POST /control/script        {"rules": [...], "default": {...}, "n_ctx": 8192, "cache_reuse": 256,
                                 "tools_template": true, "loading": false} replaces the script
    GET  /control/log           every chat request so far: {"messages", "tools", "tool_choice", "stream",
                                "max_tokens", "temperature", "prompt_tokens", "status", "error", "finish_reason"}
    POST /control/reset         forgets the script, the log and the prompt cache

A rule is {"when": "<text>", "replies": [<reply>, ...]}. The first rule whose `when` occurs in the last user
message (case-insensitively; "" matches anything) answers. Which reply: the number of assistant messages
after that user message, so step 1 of a turn gets replies[0], step 2 replies[1], and the last one repeats.
A reply is any of:
    {"content": "text"}                                      "{last_user}" in it becomes the user's message
    {"tool_calls": [{"name": "...", "arguments": {...}}]}    arguments may also be a raw string (bad JSON)
    {"ramble": "text"}                                       the text over and over until max_tokens (or the
                                                             context) stops it: finish_reason "length"
    {"malformed_tool_call": "text"}                          the model writes "[TOOL_CALLS]" + text (broken JSON)
    {"status": 503}                                          an error status instead of an answer
    {"delay": 2.5}                                           wait first (combines with the others)
    {"stream_delay": 0.2}                                    wait between streamed chunks (combines too)
Without a matching rule the default answers; the default default is {"content": "echo: {last_user}"}.
A reply longer than max_tokens is cut there, with finish_reason "length", as the real server does. A final
assistant message is an answer begun (a prefill): llama-server continues it; the stand-in renders it and answers
from the script. Refused as llama-server refuses them: the template's own checks (9-character call ids, roles that
alternate), tool-call arguments that are not JSON (500), a history ending in a tool call or in two assistant turns.
`n_ctx` is the context per slot (/props says it; a longer prompt gets llama-server's 400); `cache_reuse` is the
--cache-reuse chunk size (timings.cache_n counts the prompt the one slot's cache still holds); `tools_template: false`
plays a chat template that cannot call tools (/props says so, `tools` are ignored, tool calls come back as text);
`loading: true` answers 503 "Loading model" everywhere but /control, as llama-server does while it loads.
"""

import asyncio
import json
import os
import re
import secrets
import string
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_REPLY = {"content": "echo: {last_user}"}
DEFAULT_N_CTX = 8192
# The mistral image's LLAMA_ARG_CACHE_REUSE.
DEFAULT_CACHE_REUSE = 256
ALIAS = "standin"
MODEL_PATH = "/models/standin.gguf"
BUILD_INFO = "b0-standin"
ID_CHARS = string.ascii_letters + string.digits
NINE_ALNUM = re.compile(r"[A-Za-z0-9]{9}")
# A stand-in token: a control tag, a word or one punctuation mark (with the spaces before it), or trailing spaces.
TOKEN = re.compile(r"\[/?[A-Z_]+\]|</?s>|\s*\w+|\s*[^\w\s]|\s+")
TOOL_CALLS_TAG = "[TOOL_CALLS]"
# The shipped template's refusals (mistral/templates/mistral-v3-tools.jinja), which llama-server reports as 400s.
ALTERNATION = "After the optional system message, conversation roles must alternate user/assistant/user/assistant/..."
BAD_ID = "Tool call IDs should be alphanumeric strings with length 9!"
BAD_ROLE = "Only user and assistant roles are supported, with the exception of an initial optional system message!"
INT32_MAX = 2**31 - 1

# llama-server's error types by status (format_error_response in tools/server/server-common.cpp).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    503: "unavailable_error",
}

SCRIPT = web.AppKey("script", dict)
LOG = web.AppKey("log", list)
SLOT = web.AppKey("slot", list)


class LlamaError(Exception):
    """An error as llama-server sends it: {"error": {"code", "message", "type", ...}}, `code` being the status."""

    def __init__(self, status: int, message: str, error_type: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.body = {"code": status, "message": message, "type": error_type or ERROR_TYPES.get(status, "server_error")}
        self.body |= extra

    def response(self) -> web.Response:
        return json_response({"error": self.body}, status=self.body["code"])


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=compact)


# Broken tool-call JSON: llama-server's parser gives up when the answer ends.
MALFORMED = LlamaError(500, "The model produced output that does not match the expected peg-native format")


def template_refusal(reason: str) -> LlamaError:
    """A raise_exception() in the chat template, worded as llama-server words it."""
    return LlamaError(
        400,
        "Unable to generate parser for this template. Automatic parser generation failed: \n------------\n"
        f"While executing CallExpression in the stand-in's template:\nError: Jinja Exception: {reason}",
    )


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % 49152


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content)
    return "" if content is None else str(content)


def check_request(body: dict[str, Any]) -> None:
    """What llama-server refuses before it renders the template, in its words."""
    if "messages" not in body:
        raise LlamaError(400, "'messages' is required")
    if not isinstance(body["messages"], list):
        raise LlamaError(400, "Expected 'messages' to be an array")
    for message in body["messages"]:
        role = message.get("role")
        if role != "assistant" and "content" not in message:
            raise LlamaError(400, "All non-assistant messages must contain 'content'")
        if role == "assistant" and "content" not in message and "tool_calls" not in message:
            raise LlamaError(400, "Assistant message must contain either 'content' or 'tool_calls'!")
        if not isinstance(message.get("content"), str | list | None):
            raise LlamaError(400, "Expected 'content' to be a string or an array")
    if body.get("tool_choice", "auto") not in ("auto", "none", "required"):
        raise LlamaError(400, f"Invalid tool_choice: {body['tool_choice']}")
    for name in ("n_predict", "max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise LlamaError(400, f"Field '{name}': [json.exception.type_error.302] type must be number")
        if not -1 <= value <= INT32_MAX:
            raise LlamaError(400, f"Field '{name}': Value must be between -1 <= value <= {INT32_MAX}, but got {value}")
        break
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or isinstance(temperature, bool)):
        raise LlamaError(400, "Field 'temperature': [json.exception.type_error.302] type must be number")


def render_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """The shipped template's rendering (Mistral v3 markup, tools and system prompt first) and its refusals."""
    system = None
    loop_messages = messages
    if messages and messages[0].get("role") == "system":
        system, loop_messages = text_of(messages[0]), messages[1:]
    index = 0
    for message in loop_messages:
        if message.get("role") in ("tool", "tool_results") or message.get("tool_calls") is not None:
            continue
        if (message.get("role") == "user") != (index % 2 == 0):
            raise template_refusal(ALTERNATION)
        index += 1
    prompt = "<s>"
    if tools:
        described = [{"type": "function", "function": tool.get("function", {})} for tool in tools]
        prompt += f"[AVAILABLE_TOOLS] {json.dumps(described)}[/AVAILABLE_TOOLS]"
    if system is not None and (not loop_messages or loop_messages[0].get("role") != "user"):
        prompt += f"[INST] {system}[/INST]"
    for position, message in enumerate(loop_messages):
        role = message.get("role")
        if role == "user":
            head = f"{system}\n\n" if position == 0 and system is not None else ""
            prompt += f"[INST] {head}{text_of(message)}[/INST]"
        elif message.get("tool_calls") is not None:
            calls = []
            for call in message["tool_calls"]:
                if not (isinstance(call.get("id"), str) and NINE_ALNUM.fullmatch(call["id"])):
                    raise template_refusal(BAD_ID)
                arguments = call["function"].get("arguments")
                if isinstance(arguments, str):
                    try:
                        arguments = json.loads(arguments)
                    except ValueError as exc:
                        raise LlamaError(500, f"Failed to parse tool call arguments as JSON: {exc}") from None
                arguments = json.dumps(arguments)
                name = json.dumps(call["function"]["name"])
                calls.append(f'{{"name": {name}, "arguments": {arguments}, "id": {json.dumps(call["id"])}}}')
            prompt += f"{TOOL_CALLS_TAG} [{', '.join(calls)}]</s>"
        elif role == "assistant":
            prompt += f" {text_of(message).strip()}</s>"
        elif role in ("tool", "tool_results"):
            call_id = message.get("tool_call_id")
            if not (isinstance(call_id, str) and NINE_ALNUM.fullmatch(call_id)):
                raise template_refusal(BAD_ID)
            prompt += f"[TOOL_RESULTS] {json.dumps({'content': text_of(message), 'call_id': call_id})}[/TOOL_RESULTS]"
        else:
            raise template_refusal(BAD_ROLE)
    return prompt


def render_plain(messages: list[dict[str, Any]]) -> str:
    """A template without tools (ChatML, as SmolLM2's own): every message as text, tools nowhere."""
    return "".join(f"<|im_start|>{m.get('role')}\n{text_of(m)}<|im_end|>\n" for m in messages) + (
        "<|im_start|>assistant\n"
    )


def prompt_for(script: dict[str, Any], body: dict[str, Any]) -> str:
    """The prompt; a final assistant message is the answer's start (a prefill), continued as it stands."""
    messages = body["messages"]
    prefill = ""
    if messages and messages[-1].get("role") == "assistant":
        if len(messages) >= 2 and messages[-2].get("role") == "assistant":
            raise LlamaError(400, "Cannot have 2 or more assistant messages at the end of the list.")
        if messages[-1].get("tool_calls"):
            raise LlamaError(400, "Cannot continue an assistant message that contains tool calls.")
        messages, prefill = messages[:-1], text_of(messages[-1])
    if not script.get("tools_template", True):
        return render_plain(messages) + prefill
    return render_prompt(messages, body.get("tools") or []) + prefill


def choose_reply(script: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
    step = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "assistant")
    for rule in script.get("rules", []):
        if str(rule.get("when", "")).lower() in user_text.lower():
            replies = rule.get("replies") or [DEFAULT_REPLY]
            return replies[min(step, len(replies) - 1)], user_text
    return script.get("default") or DEFAULT_REPLY, user_text


@dataclass
class Turn:
    """What the scripted model writes, one token at a time, and why it stopped.

    Each token is (kind, call, piece): "text" is answer text; a tool call is "head" tokens up to "name", the one
    that completes its name (llama-server shows the call from there), then "args" and "tail".
    """

    written: list[tuple[str, int, str]]
    finish_reason: str
    calls: list[dict[str, str]]

    @property
    def text(self) -> str:
        return "".join(piece for kind, _, piece in self.written if kind == "text")

    def parsed_calls(self) -> list[dict[str, str]]:
        """The calls whose name was written, with the arguments written so far."""
        named = [call for kind, call, _ in self.written if kind == "name"]
        return [
            self.calls[i] | {"arguments": "".join(p for k, c, p in self.written if k == "args" and c == i)}
            for i in named
        ]

    def head(self, index: int) -> str:
        opening = f"{TOOL_CALLS_TAG} [" if index == 0 else ", "
        return opening + f'{{"name": {json.dumps(self.calls[index]["name"])}, "arguments": '


def call_markup(calls: list[dict[str, Any]]) -> str:
    written = [{"name": call["name"], "arguments": call.get("arguments") or {}} for call in calls]
    return f"{TOOL_CALLS_TAG} {json.dumps(written)}"


def write_turn(reply: dict[str, Any], user_text: str, budget: int, parse_tool_calls: bool) -> Turn:
    """The scripted reply as the model writes it, cut at `budget` tokens (max_tokens, or the context left)."""
    budget = max(budget, 0)
    if "ramble" in reply:
        piece = tokens(str(reply["ramble"])) or [" and", " so", " on"]
        return Turn([("text", -1, piece[i % len(piece)]) for i in range(budget)], "length", [])
    text = str(reply.get("content", "")).replace("{last_user}", user_text)
    scripted = reply.get("tool_calls") or []
    if "malformed_tool_call" in reply:
        text += TOOL_CALLS_TAG + str(reply["malformed_tool_call"])
    elif scripted and not parse_tool_calls:
        # Unparsed (tool_choice "none", a template without tools), the model's tool-call markup is plain text.
        text += call_markup(scripted)
        scripted = []
    calls = [
        {
            # llama-server's own ids: 32 letters and digits, which Mistral's template refuses (it wants 9).
            "id": "".join(secrets.choice(ID_CHARS) for _ in range(32)),
            "name": str(call["name"]),
            "arguments": call["arguments"]
            if isinstance(call.get("arguments"), str)
            else json.dumps(call.get("arguments") or {}),
        }
        for call in scripted
    ]
    turn = Turn([("text", -1, piece) for piece in tokens(text)], "stop", calls)
    for index, call in enumerate(calls):
        head = tokens(turn.head(index))
        turn.written += [("head", index, piece) for piece in head[:-1]] + [("name", index, head[-1])]
        turn.written += [("args", index, piece) for piece in tokens(call["arguments"])]
        turn.written += [("tail", index, piece) for piece in tokens("}" if index < len(calls) - 1 else "}]")]
    if len(turn.written) > budget:
        turn.written, turn.finish_reason = turn.written[:budget], "length"
    elif calls:
        turn.finish_reason = "tool_calls"
    return turn


@dataclass
class Completion:
    """One answer in llama-server's shapes: ids, counts, timings, the message and the stream's chunks."""

    model: str
    prompt_tokens: int
    cached: int
    turn: Turn
    include_usage: bool = False
    timings_per_token: bool = False
    id: str = field(default_factory=lambda: "chatcmpl-" + "".join(secrets.choice(ID_CHARS) for _ in range(32)))
    created: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.perf_counter)

    def timings(self, predicted: int) -> dict[str, Any]:
        prompt_n = self.prompt_tokens - self.cached
        elapsed_ms = max((time.perf_counter() - self.started) * 1000, 0.001)
        prompt_ms, predicted_ms = elapsed_ms / 10, elapsed_ms * 9 / 10
        return {
            "cache_n": self.cached,
            "prompt_n": prompt_n,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / max(prompt_n, 1),
            "prompt_per_second": prompt_n * 1000 / prompt_ms,
            "predicted_n": predicted,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / max(predicted, 1),
            "predicted_per_second": predicted * 1000 / predicted_ms,
        }

    def usage(self) -> dict[str, Any]:
        completion_tokens = len(self.turn.written)
        return {
            "completion_tokens": completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": completion_tokens + self.prompt_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        }

    def answer(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.turn.text}
        if calls := self.turn.parsed_calls():
            message["tool_calls"] = [
                {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}, "id": c["id"]}
                for c in calls
            ]
        return {
            "choices": [{"finish_reason": self.turn.finish_reason, "index": 0, "message": message}],
            "created": self.created,
            "model": self.model,
            "system_fingerprint": BUILD_INFO,
            "object": "chat.completion",
            "usage": self.usage(),
            "id": self.id,
            "timings": self.timings(len(self.turn.written)),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "choices": [{"finish_reason": finish_reason, "index": 0, "delta": delta}],
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "system_fingerprint": BUILD_INFO,
            "object": "chat.completion.chunk",
        }

    def token_chunks(self, number: int, kind: str, call: int, piece: str) -> list[dict[str, Any]]:
        """What llama-server sends for one generated token: nothing while a call's name is still being written."""
        group = [self.chunk({"role": "assistant", "content": None})] if number == 0 else []
        if kind == "text":
            group.append(self.chunk({"content": piece}))
        elif kind == "args":
            group.append(self.chunk({"tool_calls": [{"index": call, "function": {"arguments": piece}}]}))
        elif kind == "name":
            details = self.turn.calls[call]
            header = {"index": call, "id": details["id"], "type": "function", "function": {"name": details["name"]}}
            group.append(self.chunk({"tool_calls": [header]}))
        if group and self.timings_per_token:
            group[-1]["timings"] = self.timings(number + 1)
        return group

    def ending(self) -> list[dict[str, Any]]:
        end = [self.chunk({}, self.turn.finish_reason)]
        if self.include_usage:
            end.append(self.chunk({}) | {"choices": [], "usage": self.usage()})
        end[-1]["timings"] = self.timings(len(self.turn.written))
        return end


def reused(cache: list[str], prompt: list[str], min_chunk: int) -> int:
    """How much of the prompt the slot's cache holds: the common prefix, then (--cache-reuse) chunks of at least
    `min_chunk` tokens found further on in the cache, in the prompt's order, as llama-server shifts them."""
    n_past = 0
    while n_past < min(len(cache), len(prompt)) and cache[n_past] == prompt[n_past]:
        n_past += 1
    head_c = head_p = n_past
    while min_chunk > 0 and head_c < len(cache) and head_p < len(prompt):
        match = 0
        while (
            head_c + match < len(cache)
            and head_p + match < len(prompt)
            and cache[head_c + match] == prompt[head_p + match]
        ):
            match += 1
        if match >= min_chunk:
            n_past, head_c, head_p = n_past + match, head_c + match, head_p + match
        else:
            head_c += 1
    return n_past


async def chat_completions(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except ValueError as exc:
        raise LlamaError(500, f"[json.exception.parse_error.101] parse error: {exc}") from None
    script = request.app[SCRIPT]
    entry: dict[str, Any] = {
        "time": time.time(),
        "messages": body.get("messages") or [],
        "tools": [tool.get("function", {}).get("name") for tool in body.get("tools") or []],
        "tool_choice": body.get("tool_choice"),
        "model": body.get("model"),
        "stream": bool(body.get("stream")),
        "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "temperature": body.get("temperature"),
    }
    request.app[LOG].append(entry)
    try:
        check_request(body)
        prompt = tokens(prompt_for(script, body))
        entry["prompt_tokens"] = len(prompt)
        n_ctx = int(script.get("n_ctx", DEFAULT_N_CTX))
        if len(prompt) >= n_ctx:
            raise LlamaError(
                400,
                f"request ({len(prompt)} tokens) exceeds the available context size ({n_ctx} tokens), "
                "try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=len(prompt),
                n_ctx=n_ctx,
            )
        reply, user_text = choose_reply(script, body["messages"])
        if reply.get("delay"):
            await asyncio.sleep(float(reply["delay"]))
        if reply.get("status"):
            raise LlamaError(int(reply["status"]), "scripted failure")
    except LlamaError as exc:
        entry.update(status=exc.body["code"], error=exc.body["message"])
        raise
    max_tokens = next((body[k] for k in ("n_predict", "max_completion_tokens", "max_tokens") if k in body), -1)
    # Generation also stops when the context is full.
    room = n_ctx - len(prompt) - 1
    budget = room if max_tokens in (-1, None) else min(int(max_tokens), room)
    parse_tool_calls = bool(body.get("tools")) and body.get("tool_choice") != "none"
    turn = write_turn(reply, user_text, budget, parse_tool_calls and script.get("tools_template", True))
    # The slot's prompt cache; the prompt's last token is always evaluated again.
    min_chunk = int(body.get("n_cache_reuse", script.get("cache_reuse", DEFAULT_CACHE_REUSE)))
    cached = min(reused(request.app[SLOT], prompt, min_chunk), len(prompt) - 1)
    request.app[SLOT][:] = prompt + [piece for _, _, piece in turn.written]
    completion = Completion(
        model=ALIAS,
        prompt_tokens=len(prompt),
        cached=cached,
        turn=turn,
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        timings_per_token=bool(body.get("timings_per_token")),
    )
    broken = "malformed_tool_call" in reply and parse_tool_calls
    if broken:
        entry.update(status=500, error=MALFORMED.body["message"])
    else:
        entry.update(status=200, finish_reason=turn.finish_reason)
    if not body.get("stream"):
        if broken:
            raise MALFORMED
        return json_response(completion.answer())
    groups = [completion.token_chunks(n, *token) for n, token in enumerate(turn.written)]
    if broken:
        # The parser holds back everything from the tool-call tag on, then gives up at the end of the answer.
        tag = next(n for n, (_, _, piece) in enumerate(turn.written) if piece == TOOL_CALLS_TAG)
        groups = [*groups[:tag], [{"error": MALFORMED.body}]]
    else:
        groups += [completion.ending(), ["[DONE]"]]
    return await send_events(request, groups, float(reply.get("stream_delay", 0)))


async def send_events(request: web.Request, groups: list[list[Any]], delay: float) -> web.StreamResponse:
    """Server-sent events, one write per group (a generated token), `delay` seconds apart."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for number, group in enumerate(groups):
        if delay and number:
            await asyncio.sleep(delay)
        events = "".join(f"data: {event if isinstance(event, str) else compact(event)}\n\n" for event in group)
        await response.write(events.encode())
    await response.write_eof()
    return response


async def apply_template(request: web.Request) -> web.Response:
    body = await request.json()
    check_request(body)
    return json_response({"prompt": prompt_for(request.app[SCRIPT], body)})


async def tokenize(request: web.Request) -> web.Response:
    body = await request.json()
    pieces = tokens(str(body.get("content", "")))
    if body.get("with_pieces"):
        return json_response({"tokens": [{"id": token_id(p), "piece": p} for p in pieces]})
    return json_response({"tokens": [token_id(p) for p in pieces]})


async def props(request: web.Request) -> web.Response:
    script = request.app[SCRIPT]
    tools = bool(script.get("tools_template", True))
    caps = ("supports_object_arguments", "supports_parallel_tool_calls", "supports_tool_calls", "supports_tools")
    return json_response(
        {
            "default_generation_settings": {
                "params": {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "n_predict": -1},
                "n_ctx": int(script.get("n_ctx", DEFAULT_N_CTX)),
            },
            "total_slots": 1,
            "model_alias": ALIAS,
            "model_path": MODEL_PATH,
            "chat_template": "(the stand-in's Mistral v3 markup)" if tools else "(the stand-in's ChatML)",
            "chat_template_caps": {
                "supports_preserve_reasoning": False,
                "supports_reasoning_effort": False,
                "supports_string_content": True,
                "supports_system_role": True,
                "supports_typed_content": False,
            }
            | dict.fromkeys(caps, tools),
            "bos_token": "<s>",
            "eos_token": "</s>",
            "build_info": BUILD_INFO,
            "is_sleeping": False,
        }
    )


async def models(request: web.Request) -> web.Response:
    n_ctx = int(request.app[SCRIPT].get("n_ctx", DEFAULT_N_CTX))
    model = {"id": ALIAS, "aliases": [ALIAS], "tags": [], "object": "model", "created": int(time.time())}
    model |= {"owned_by": "llamacpp", "meta": {"n_ctx": n_ctx}}
    return json_response({"object": "list", "data": [model]})


async def health(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def set_script(request: web.Request) -> web.Response:
    request.app[SCRIPT].clear()
    request.app[SCRIPT].update(await request.json())
    return json_response({"ok": True})


async def read_log(request: web.Request) -> web.Response:
    return json_response(request.app[LOG])


async def reset(request: web.Request) -> web.Response:
    request.app[SCRIPT].clear()
    request.app[LOG].clear()
    request.app[SLOT].clear()
    return json_response({"ok": True})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def like_llama_server(request: web.Request, handler: Handler) -> web.StreamResponse:
    """503 while "loading"; errors in llama-server's body shape."""
    control = request.path.startswith("/control/")
    if not control and request.app[SCRIPT].get("loading"):
        return LlamaError(503, "Loading model").response()
    try:
        return await handler(request)
    except LlamaError as exc:
        return exc.response()


def make_app() -> web.Application:
    app = web.Application(middlewares=[like_llama_server])
    app[SCRIPT] = {}
    app[LOG] = []
    app[SLOT] = []
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/apply-template", apply_template)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_get("/props", props)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_post("/control/script", set_script)
    app.router.add_get("/control/log", read_log)
    app.router.add_post("/control/reset", reset)
    return app


if __name__ == "__main__":
    # 0.0.0.0 inside its container (the bot reaches it over the compose network); the bench sets 127.0.0.1.
    host = os.environ.get("HOST", "0.0.0.0")
    web.run_app(make_app(), host=host, port=int(os.environ.get("PORT", "8080")), access_log=None)

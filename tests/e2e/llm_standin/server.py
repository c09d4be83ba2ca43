"""A scripted OpenAI-compatible chat API for tests: it answers from a script and logs every request.

Run it with `python server.py` (PORT, default 8080). Only aiohttp is needed, so the bot image can run it.

    POST /v1/chat/completions   answers from the script (below); 400 for what llama.cpp's Mistral template
                                refuses: a tool-call id that is not 9 alphanumerics, `content: null`, a tool
                                result for an id no assistant message called
    GET  /v1/models, /health
    POST /control/script        {"rules": [...], "default": {...}} replaces the script
    GET  /control/log           every chat request so far: {"messages", "tools", "tool_choice", "status", "error"}
    POST /control/reset         forgets the script and the log

A rule is {"when": "<text>", "replies": [<reply>, ...]}. The first rule whose `when` occurs in the last user
message (case-insensitively; "" matches anything) answers. Which reply: the number of assistant messages
after that user message, so step 1 of a turn gets replies[0], step 2 replies[1], and the last one repeats.
A reply is any of:
    {"content": "text"}                                      "{last_user}" in it becomes the user's message
    {"tool_calls": [{"name": "...", "arguments": {...}}]}    arguments may also be a raw string (bad JSON)
    {"status": 503}                                          an error status instead of an answer
    {"delay": 2.5}                                           wait first (combines with the others)
Without a matching rule the default answers; the default default is {"content": "echo: {last_user}"}.
"""

import asyncio
import json
import os
import re
import secrets
import time
from typing import Any

from aiohttp import web

NINE_ALNUM = re.compile(r"^[A-Za-z0-9]{9}$")
DEFAULT_REPLY = {"content": "echo: {last_user}"}

SCRIPT = web.AppKey("script", dict)
LOG = web.AppKey("log", list)


def problems(messages: list[dict[str, Any]]) -> list[str]:
    """What llama-server's Mistral chat template (or a strict OpenAI-compatible server) would refuse."""
    found = []
    called: set[str] = set()
    for index, message in enumerate(messages):
        if "content" not in message or message["content"] is None:
            found.append(f"messages[{index}] ({message.get('role')}) has content null or missing")
        for call in message.get("tool_calls") or []:
            if not NINE_ALNUM.match(str(call.get("id", ""))):
                found.append(f"Tool call IDs should be alphanumeric strings with length 9! saw {call.get('id')!r}")
            called.add(str(call.get("id")))
            try:
                if not isinstance(json.loads(call["function"]["arguments"]), dict):
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                found.append(f"messages[{index}] tool call arguments are not a JSON object")
        if message.get("role") == "tool" and message.get("tool_call_id") not in called:
            found.append(f"messages[{index}] answers tool call {message.get('tool_call_id')!r}, which nobody made")
    return found


def choose_reply(script: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
    step = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "assistant")
    for rule in script.get("rules", []):
        if str(rule.get("when", "")).lower() in user_text.lower():
            replies = rule.get("replies") or [DEFAULT_REPLY]
            return replies[min(step, len(replies) - 1)], user_text
    return script.get("default") or DEFAULT_REPLY, user_text


def completion(model: str, reply: dict[str, Any], user_text: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if "content" in reply:
        message["content"] = str(reply["content"]).replace("{last_user}", user_text)
    calls = reply.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {
                # OpenAI-style ids, longer than Mistral accepts: the client must rewrite them.
                "id": f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call.get("arguments"), str)
                    else json.dumps(call.get("arguments") or {}),
                },
            }
            for call in calls
        ]
    return {
        "id": f"chatcmpl-{secrets.token_hex(8)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


async def chat_completions(request: web.Request) -> web.Response:
    body = await request.json()
    messages = body.get("messages") or []
    entry: dict[str, Any] = {
        "time": time.time(),
        "messages": messages,
        "tools": [tool["function"]["name"] for tool in body.get("tools") or []],
        "tool_choice": body.get("tool_choice"),
        "model": body.get("model"),
    }
    request.app[LOG].append(entry)
    found = problems(messages)
    if found:
        entry.update(status=400, error="; ".join(found))
        return web.json_response({"error": {"message": entry["error"], "type": "invalid_request_error"}}, status=400)
    reply, user_text = choose_reply(request.app[SCRIPT], messages)
    if reply.get("delay"):
        await asyncio.sleep(float(reply["delay"]))
    if reply.get("status"):
        entry["status"] = int(reply["status"])
        return web.json_response({"error": {"message": "scripted failure"}}, status=entry["status"])
    entry["status"] = 200
    return web.json_response(completion(str(body.get("model")), reply, user_text))


async def set_script(request: web.Request) -> web.Response:
    request.app[SCRIPT].clear()
    request.app[SCRIPT].update(await request.json())
    return web.json_response({"ok": True})


async def read_log(request: web.Request) -> web.Response:
    return web.json_response(request.app[LOG])


async def reset(request: web.Request) -> web.Response:
    request.app[SCRIPT].clear()
    request.app[LOG].clear()
    return web.json_response({"ok": True})


async def models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "standin", "object": "model", "owned_by": "tests"}]})


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app[SCRIPT] = {}
    app[LOG] = []
    app.router.add_post("/v1/chat/completions", chat_completions)
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

"""The LLM stand-in answers like the real llama-server, or the tests that use it prove nothing.

The same requests go to the stand-in (tests/e2e/llm_standin) and to the project's mistral image serving
SmolLM2-135M-Instruct; the answers are compared by shape (keys, types, finish reasons, error statuses and types),
not by text. A 135M model writes no tool call on its own, so the tool-call cases start its answer for it
(an assistant prefill, which llama-server continues and parses).
"""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.llm_standin.client import LlmStandIn
from tests.e2e.real_model import IMAGE, docker, wait_healthy

pytestmark = pytest.mark.e2e

STANDIN = Path(__file__).parent / "llm_standin" / "server.py"
TIMEOUT = 600.0
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "tasks_add",
            "description": "Add a task to the list",
            "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
        },
    }
]
SYSTEM = {"role": "system", "content": "You are a helpful butler."}
ASK = {"role": "user", "content": "Add milk to my tasks"}
# The model's answer begun for it: llama-server continues a final assistant message and parses the whole.
CALL_BEGUN = {"role": "assistant", "content": '[TOOL_CALLS] [{"name": "tasks_add", "arguments": {"title": "'}
CALL_WRITTEN = {"role": "assistant", "content": '[TOOL_CALLS] [{"name": "tasks_add", "arguments": {"title": "milk"}}]'}
CALL_BROKEN = {"role": "assistant", "content": '[TOOL_CALLS] [{"name": "tasks_add", "arguments": {"title": milk}}]'}
LONG_CALL = {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "milk " * 40}}]}


def call_turn(call_id: str, arguments: str = '{"title": "milk"}') -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "tasks_add", "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def result_turn(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": "tasks_add", "content": "added"}


@dataclass
class Answer:
    status: int
    body: Any  # the JSON body, or the list of server-sent events (JSON, or "[DONE]")

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, f"expected an error body; saw {self.body}"
        return self.body["error"]


def post(base_url: str, path: str, body: dict[str, Any]) -> Answer:
    with httpx.stream("POST", f"{base_url}{path}", json=body, timeout=TIMEOUT) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
            return Answer(response.status_code, [line if line == "[DONE]" else json.loads(line) for line in lines])
        return Answer(response.status_code, json.loads(response.read()))


def chat(base_url: str, *messages: dict[str, Any], **options: Any) -> Answer:
    body = {"model": "any", "messages": list(messages), "temperature": 0, "max_tokens": 3, **options}
    return post(base_url, "/v1/chat/completions", body)


def shape(value: Any) -> Any:
    """Keys and types, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def kind(event: Any) -> str:
    """What a streamed event is, as a client reading the stream tells them apart."""
    if event == "[DONE]":
        return "done"
    if "error" in event:
        return "error"
    if not event["choices"]:
        return "usage"
    choice = event["choices"][0]
    if choice["finish_reason"] is not None:
        return f"finish:{choice['finish_reason']}"
    delta = choice["delta"]
    if "role" in delta:
        return "role"
    if "tool_calls" in delta:
        return "tool_call" if "id" in delta["tool_calls"][0] else "arguments"
    return "content"


def kinds(events: list[Any]) -> list[str]:
    """The stream's grammar: event kinds in order, repeats collapsed."""
    seen: list[str] = []
    for event in events:
        if not seen or seen[-1] != kind(event):
            seen.append(kind(event))
    return seen


def event_shapes(events: list[Any]) -> dict[str, Any]:
    """Each kind's shape; a call's first chunk may carry the first arguments too (llama-server sends what it has)."""
    shapes = {}
    for event in events:
        if kind(event) == "tool_call":
            event = json.loads(json.dumps(event))
            event["choices"][0]["delta"]["tool_calls"][0]["function"].pop("arguments", None)
        shapes.setdefault(kind(event), shape(event))
    return shapes


def assert_same_stream(seen: Answer, real: Answer) -> None:
    assert (seen.status, kinds(seen.body)) == (real.status, kinds(real.body)), (
        f"expected the stand-in's stream to go like llama-server's: {real.status} {kinds(real.body)}; "
        f"saw {seen.status} {kinds(seen.body)}"
    )
    assert event_shapes(seen.body) == event_shapes(real.body), (
        f"expected the stand-in's chunks shaped like llama-server's:\n{event_shapes(real.body)}\n"
        f"saw:\n{event_shapes(seen.body)}"
    )


def assert_same_answer(seen: Answer, real: Answer) -> None:
    assert (seen.status, shape(seen.body)) == (real.status, shape(real.body)), (
        f"expected the stand-in's answer shaped like llama-server's: {real.status} {shape(real.body)}; "
        f"saw {seen.status} {shape(seen.body)}"
    )
    if seen.status == 200:
        assert seen.body["choices"][0]["finish_reason"] == real.body["choices"][0]["finish_reason"], (
            f"expected finish_reason {real.body['choices'][0]['finish_reason']!r}; "
            f"saw {seen.body['choices'][0]['finish_reason']!r}"
        )


def assert_same_error(seen: Answer, real: Answer) -> None:
    assert (seen.status, shape(seen.body), seen.error["type"]) == (real.status, shape(real.body), real.error["type"]), (
        f"expected the stand-in to refuse like llama-server: {real.status} {real.body}; saw {seen.status} {seen.body}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    """The stand-in in its own process, on loopback."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(STANDIN)], env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "expected the stand-in to start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def standin(standin_url: str) -> Iterator[LlmStandIn]:
    llm = LlmStandIn(standin_url)
    llm.reset()
    yield llm
    llm.reset()


@dataclass
class PlainServer:
    url: str
    loading: Answer  # GET /health while the model loaded


@pytest.fixture(scope="module")
def plain_llm(smollm2: Path, real_llm: str) -> Iterator[PlainServer]:
    """llama-server on SmolLM2 with the GGUF's own chat template (ChatML, no tools), watched while it loads.

    Started by hand rather than with run_llama_server, which returns only once the model is loaded (real_llm first:
    it makes the GGUF readable to the container's user).
    """
    container = docker(
        *("run", "--detach", "--publish", "127.0.0.1::8080", "--volume", f"{smollm2.parent}:/models:ro"),
        *("--env", f"MISTRAL_MODEL_FILE={smollm2.name}", "--env", "MISTRAL_CHAT_TEMPLATE=", IMAGE),
    ).stdout.strip()
    try:
        url = "http://" + docker("port", container, "8080/tcp").stdout.splitlines()[0].strip()
        loading = None
        deadline = time.monotonic() + TIMEOUT
        while loading is None and time.monotonic() < deadline:
            try:
                response = httpx.get(f"{url}/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.02)
                continue
            loading = Answer(response.status_code, response.json())
        assert loading is not None, "expected llama-server to answer /health"
        wait_healthy(container, url)
        yield PlainServer(url, loading)
    finally:
        docker("rm", "--force", "--volumes", container, check=False)


def test_props_say_what_the_bot_reads(standin: LlmStandIn, real_llm: str, plain_llm: PlainServer) -> None:
    for tools_template, real_url in ((True, real_llm), (False, plain_llm.url)):
        standin.script(tools_template=tools_template)
        seen = httpx.get(f"{standin.url}/props", timeout=10).json()
        real = httpx.get(f"{real_url}/props", timeout=10).json()
        for key in ("chat_template_caps", "model_path", "total_slots", "model_alias", "build_info", "is_sleeping"):
            assert shape(seen[key]) == shape(real[key]), f"expected /props {key} like {real[key]!r}; saw {seen[key]!r}"
        assert seen["chat_template_caps"] == real["chat_template_caps"], (
            f"expected the caps of a template {'with' if tools_template else 'without'} tools: "
            f"{real['chat_template_caps']}; saw {seen['chat_template_caps']}"
        )
        n_ctx = seen["default_generation_settings"]["n_ctx"], real["default_generation_settings"]["n_ctx"]
        assert n_ctx == (8192, 8192), f"expected n_ctx 8192 from both (the image's default); saw {n_ctx}"
    seen, real = (httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0] for url in (standin.url, real_llm))
    assert {key: type(value) for key, value in seen.items()} == {key: type(real[key]) for key in seen}, (
        f"expected /v1/models entries like {real}; saw {seen}"
    )


def test_loading_is_a_503(standin: LlmStandIn, plain_llm: PlainServer) -> None:
    standin.script(loading=True)
    for path in ("/health", "/props"):
        seen = httpx.get(f"{standin.url}{path}", timeout=10)
        assert_same_error(Answer(seen.status_code, seen.json()), plain_llm.loading)


def test_template_rendering_matches_the_shipped_template(standin: LlmStandIn, real_llm: str) -> None:
    run = [SYSTEM, ASK, call_turn("abcDEF123"), result_turn("abcDEF123"), {"role": "assistant", "content": "Done."}]
    body = {"messages": run, "tools": TOOLS}
    seen = post(standin.url, "/apply-template", body).body["prompt"]
    real = post(real_llm, "/apply-template", body).body["prompt"]
    # SmolLM2's BOS and EOS are ChatML's; the stand-in plays Mistral's.
    real = real.replace("<|im_start|>", "<s>").replace("<|im_end|>", "</s>")
    assert seen == real, f"expected the stand-in to render the shipped template's prompt:\n{real}\nsaw:\n{seen}"
    for options in ({}, {"with_pieces": True}):
        seen, real = (
            post(url, "/tokenize", {"content": "[INST] Hello[/INST]", **options}) for url in (standin.url, real_llm)
        )
        token_shapes = [{json.dumps(shape(token)) for token in answer.body["tokens"]} for answer in (seen, real)]
        assert (set(seen.body), token_shapes[0]) == (set(real.body), token_shapes[1]), (
            f"expected /tokenize {options} shaped like {real.body}; saw {seen.body}"
        )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_bounded_answer_ends_with_length(standin: LlmStandIn, real_llm: str, stream: bool) -> None:
    standin.script(default={"ramble": "on and on "})
    options = {"stream": stream, "stream_options": {"include_usage": True}} if stream else {}
    seen, real = (chat(url, SYSTEM, ASK, **options) for url in (standin.url, real_llm))
    if stream:
        assert_same_stream(seen, real)
        assert kinds(seen.body) == ["role", "content", "finish:length", "usage", "done"], kinds(seen.body)
    else:
        assert_same_answer(seen, real)
        assert seen.body["choices"][0]["finish_reason"] == "length", seen.body


@pytest.mark.parametrize("per_token", [False, True], ids=["at_the_end", "per_token"])
def test_a_stream_without_usage_puts_timings_on_the_finish_chunk(
    standin: LlmStandIn, real_llm: str, per_token: bool
) -> None:
    standin.script(default={"ramble": "on and on "})
    seen, real = (chat(url, SYSTEM, ASK, stream=True, timings_per_token=per_token) for url in (standin.url, real_llm))
    assert_same_stream(seen, real)
    assert "timings" in seen.body[-2] and "usage" not in seen.body[-2], seen.body[-2]
    assert ("timings" in seen.body[1]) == per_token, f"expected timings on each token only when asked; saw {seen.body}"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_call_comes_in_llama_server_chunks(standin: LlmStandIn, real_llm: str, stream: bool) -> None:
    standin.script(default=LONG_CALL)
    # Both stop inside the arguments. The real model has its call's start for free and closes the JSON by its
    # 5th token (then writes on, which fails to parse); the stand-in writes the start itself.
    seen = chat(standin.url, ASK, CALL_BEGUN, tools=TOOLS, max_tokens=20, stream=stream)
    real = chat(real_llm, ASK, CALL_BEGUN, tools=TOOLS, max_tokens=3, stream=stream)
    if stream:
        assert_same_stream(seen, real)
        assert kinds(seen.body) == ["role", "tool_call", "arguments", "finish:length", "done"], kinds(seen.body)
    else:
        assert_same_answer(seen, real)
        call = seen.body["choices"][0]["message"]["tool_calls"][0]
        assert len(call["id"]) == 32 and call["id"].isalnum(), f"expected llama-server's 32-character id; saw {call}"


@pytest.mark.parametrize("choice", ["none", "no tools template"])
def test_unparsed_tool_markup_is_plain_content(
    standin: LlmStandIn, real_llm: str, plain_llm: PlainServer, choice: str
) -> None:
    call = {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "milk"}}]}
    if choice == "none":
        standin.script(default=call)
        real_url, options = real_llm, {"tool_choice": "none"}
    else:
        standin.script(default=call, tools_template=False)
        real_url, options = plain_llm.url, {}
    seen = chat(standin.url, ASK, tools=TOOLS, max_tokens=40, **options)
    real = chat(real_url, ASK, CALL_WRITTEN, tools=TOOLS, max_tokens=2, **options)
    assert shape(seen.body["choices"][0]["message"]) == shape(real.body["choices"][0]["message"]), (
        f"expected a plain message like {real.body}; saw {seen.body}"
    )
    for answer in (seen, real):
        assert "[TOOL_CALLS]" in answer.body["choices"][0]["message"]["content"], answer.body


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_malformed_tool_call_json_fails_like_llama_server(standin: LlmStandIn, real_llm: str, stream: bool) -> None:
    standin.script(default={"malformed_tool_call": ' [{"name": "tasks_add", "arguments": {"title": milk}}]'})
    seen, real = (
        chat(url, ASK, CALL_BROKEN, tools=TOOLS, max_tokens=2, stream=stream) for url in (standin.url, real_llm)
    )
    if stream:
        assert_same_stream(seen, real)
        assert kinds(seen.body)[-1] == "error" and seen.body[-1]["error"]["code"] == 500, seen.body
    else:
        assert_same_error(seen, real)


REFUSALS = {
    "a tool-call id not 9 characters": (ASK, call_turn("call_0123456789abcdef"), result_turn("call_0123456789abcdef")),
    "a tool-call id not alphanumeric": (ASK, call_turn("abc-DEF12"), result_turn("abc-DEF12")),
    "roles that do not alternate": (ASK, ASK),
    "an unknown role": (ASK, {"role": "developer", "content": "x"}),
    "tool-call arguments that are not JSON": (ASK, call_turn("abcDEF123", "{not json"), result_turn("abcDEF123")),
    "a user message without content": ({"role": "user"},),
    "a history ending in a tool call": (ASK, call_turn("abcDEF123")),
    "two assistant messages at the end": (
        ASK,
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_match(standin: LlmStandIn, real_llm: str, case: str, stream: bool) -> None:
    seen, real = (chat(url, SYSTEM, *REFUSALS[case], tools=TOOLS, stream=stream) for url in (standin.url, real_llm))
    assert_same_error(seen, real)
    if "Jinja Exception" in real.error["message"]:
        reason = real.error["message"].rsplit("Jinja Exception: ", 1)[1]
        assert seen.error["message"].endswith(f"Jinja Exception: {reason}"), (
            f"expected the template's own words {reason!r}; saw {seen.error['message']!r}"
        )


@pytest.mark.parametrize(
    "options",
    [{"tool_choice": "bogus", "tools": TOOLS}, {"max_tokens": -5}, {"messages": None}],
    ids=["tool_choice", "max_tokens", "messages"],
)
def test_bad_parameters_are_refused_alike(standin: LlmStandIn, real_llm: str, options: dict[str, Any]) -> None:
    body = {"messages": [ASK], **options}
    if body["messages"] is None:
        del body["messages"]
    seen, real = (post(url, "/v1/chat/completions", body) for url in (standin.url, real_llm))
    assert_same_error(seen, real)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_prompt_over_the_context_is_a_400(standin: LlmStandIn, real_llm: str, stream: bool) -> None:
    flood = {"role": "user", "content": "word " * 9000}
    seen, real = (chat(url, SYSTEM, flood, stream=stream) for url in (standin.url, real_llm))
    assert_same_error(seen, real)
    assert real.error["type"] == "exceed_context_size_error", real.body
    assert seen.error["n_prompt_tokens"] > seen.error["n_ctx"] == real.error["n_ctx"] == 8192, seen.body

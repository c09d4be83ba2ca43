"""The tool path through a real llama-server: the project's mistral image serving SmolLM2-135M-Instruct.

The image's default chat template (Mistral v3 with tools) meets the bot's real tool schemas, taken from the real
MCP server and made compact by `butler_bot.tool_schemas`. A 135M model does not choose well: these tests assert
the plumbing and the bounds the bot relies on, not the model's wisdom.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from butler_bot.prompt import SystemPrompt
from butler_bot.texts import WatchedFile
from butler_bot.tool_schemas import openai_tools
from tests.e2e.real_model import ALIAS, run_llama_server
from tests.mcp_server.conftest import RunningServer, mcp_client, serve, server_settings

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CTX_SIZE = 8192
TIMEOUT = 300.0
CALL_ID = "call00001"  # Mistral's template takes 9 alphanumeric characters


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    database = tmp_path_factory.mktemp("tools") / "butler.db"
    with serve(server_settings(f"sqlite+aiosqlite:///{database}")) as running:
        yield running


@pytest.fixture(scope="module")
async def bot_tools(mcp_server: RunningServer) -> list[dict[str, Any]]:
    """Every tool of the real MCP server (all enabled), as the bot sends them to the model."""
    async with mcp_client(mcp_server.mcp_url, user_id=1) as client:
        return openai_tools(list((await client.list_tools()).tools))


@pytest.fixture(scope="module")
def system_prompt() -> str:
    return SystemPrompt(WatchedFile(REPO_ROOT / "config" / "butler_bot_prompt.md")).render(
        timezone="Europe/Paris", language="en"
    )


@pytest.fixture
def llm(real_llm: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_llm, timeout=TIMEOUT) as client:
        yield client


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools]


def a_whole_run(system_prompt: str, tools: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The messages the bot sends in one run: the user's message; then the model's tool call and the tool's
    result; then the model's answer and the user's next message."""
    call = {"id": CALL_ID, "type": "function", "function": {"name": "tasks_list", "arguments": '{"show": "open"}'}}
    first = [{"role": "system", "content": system_prompt}, {"role": "user", "content": "What is on my list?"}]
    with_result = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": '{"tasks": []} "quoted" ü'},
    ]
    answered = [
        *with_result,
        {"role": "assistant", "content": "Your list is empty."},
        {"role": "user", "content": "Thanks"},
    ]
    return [first, with_result, answered]


def agenda_call_started(system_prompt: str) -> list[dict[str, Any]]:
    """A request whose assistant prefill starts a call of agenda_today in Mistral's markup."""
    # With its arguments opened empty: its one parameter, daily_at, would set the briefing, not read the agenda.
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": "What is on my agenda today?"},
        {"role": "assistant", "content": '[TOOL_CALLS] [{"name": "agenda_today", "arguments": {}'},
    ]


def chat(llm: httpx.Client, **body: Any) -> dict[str, Any]:
    response = llm.post("/v1/chat/completions", json={"model": ALIAS, "temperature": 0, **body})
    assert response.status_code == 200, (
        f"expected 200 from /v1/chat/completions; got {response.status_code}: {response.text}"
    )
    return response.json()


def stream_chat(llm: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """The chunks of a streamed chat completion, in order (the `data: [DONE]` line ends the stream)."""
    chunks: list[dict[str, Any]] = []
    payload = {"model": ALIAS, "temperature": 0, "stream": True, **body}
    with llm.stream("POST", "/v1/chat/completions", json=payload) as response:
        assert response.status_code == 200, f"expected a 200 stream; got {response.status_code}: {response.read()!r}"
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
    assert chunks, "expected at least one streamed chunk; got none"
    return chunks


def test_props_say_the_shipped_template_calls_tools(llm: httpx.Client) -> None:
    props = llm.get("/props").json()
    caps = props["chat_template_caps"]
    assert caps["supports_tools"] and caps["supports_tool_calls"], f"expected a template with tools; caps: {caps}"
    n_ctx = props["default_generation_settings"]["n_ctx"]
    assert n_ctx == CTX_SIZE, f"expected a context of {CTX_SIZE} tokens per slot; /props says {n_ctx}"


def test_the_ggufs_own_template_says_it_cannot_call_tools(smollm2: Path) -> None:
    with run_llama_server(smollm2, chat_template="") as base_url:
        caps = httpx.get(f"{base_url}/props", timeout=30).json()["chat_template_caps"]
    assert not caps["supports_tool_calls"], f"expected SmolLM2's own template to have no tool calls; caps: {caps}"


def test_accepts_the_bots_tools(llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str) -> None:
    for messages in a_whole_run(system_prompt, bot_tools):
        answer = chat(llm, messages=messages, tools=bot_tools, max_tokens=4)
        assert answer["choices"][0]["message"]["role"] == "assistant", f"expected an assistant message; got {answer}"


def test_every_step_renders_every_tool_and_the_system_prompt(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str
) -> None:
    previous = ""
    for step, messages in enumerate(a_whole_run(system_prompt, bot_tools)):
        response = llm.post("/apply-template", json={"messages": messages, "tools": bot_tools})
        assert response.status_code == 200, (
            f"expected step {step} to render; got {response.status_code}: {response.text}"
        )
        prompt = response.json()["prompt"]
        missing = [name for name in tool_names(bot_tools) if f'"name": "{name}"' not in prompt]
        assert not missing, f"expected every tool in step {step}'s prompt; missing {missing}"
        assert prompt.count(system_prompt) == 1, f"expected the system prompt once in step {step}; prompt:\n{prompt}"
        # Each request extends the one before: llama-server's prompt cache reuses all of it.
        assert prompt.startswith(previous), f"expected step {step} to extend step {step - 1}; got:\n{prompt}"
        previous = prompt
    call = '[TOOL_CALLS] [{"name": "tasks_list", "arguments": {"show": "open"}, "id": "call00001"}]'
    assert call in previous, f"expected the tool call in Mistral's markup; prompt:\n{previous}"
    assert '[TOOL_RESULTS] {"content": "{\\"tasks\\": []} \\"quoted\\" ü", "call_id": "call00001"}' in previous, (
        f"expected the tool result as JSON with its call id; prompt:\n{previous}"
    )


def test_rejects_a_tool_call_id_mistral_cannot_read(llm: httpx.Client, bot_tools: list[dict[str, Any]]) -> None:
    messages = a_whole_run("You are a butler.", bot_tools)[1]
    for message in messages:
        for call in message.get("tool_calls") or []:
            call["id"] = "call_0001"
    messages[-1]["tool_call_id"] = "call_0001"
    response = llm.post("/apply-template", json={"messages": messages, "tools": bot_tools})
    assert response.status_code >= 400, f"expected the template to refuse the id 'call_0001'; got {response.text}"
    assert "Tool call IDs should be alphanumeric strings with length 9" in response.text, (
        f"expected the template's own message; got {response.status_code}: {response.text}"
    )


async def test_a_forced_tool_call_comes_back_as_tool_calls_the_mcp_server_runs(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str, mcp_server: RunningServer
) -> None:
    # SmolLM2 answers in prose even with tool_choice "required" (its grammar allows text first), and left to
    # choose, it picks a tool and rambles inside the arguments. The prefill starts the call in Mistral's
    # markup; the model writes the arguments under llama-server's grammar, and its parser makes `tool_calls`.
    answer = chat(
        llm,
        messages=agenda_call_started(system_prompt),
        tools=bot_tools,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=24,
    )
    choice = answer["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    assert len(calls) == 1, f"expected llama-server to parse one tool call; got {choice}"
    assert choice["finish_reason"] in ("tool_calls", "length"), f"expected a tool-call finish; got {choice}"
    function = calls[0]["function"]
    assert function["name"] == "agenda_today", f"expected the agenda_today call; got {calls[0]}"
    # llama-server makes up a 32-character id when the model writes none; Mistral's template takes 9 characters.
    assert calls[0]["id"].isalnum(), f"expected an alphanumeric call id; got {calls[0]['id']!r}"
    async with mcp_client(mcp_server.mcp_url, user_id=1) as client:
        result = await client.call_tool(function["name"], json.loads(function["arguments"]))
    assert not result.is_error, f"expected the MCP server to run the parsed call {function}; got {result.content}"


def test_a_streamed_tool_call_arrives_in_deltas(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str
) -> None:
    chunks = stream_chat(
        llm, messages=agenda_call_started(system_prompt), tools=bot_tools, tool_choice="required", max_tokens=12
    )
    deltas = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas, f"expected tool-call deltas; got {chunks}"
    first = deltas[0]
    assert first["index"] == 0 and first["type"] == "function" and first["id"], f"expected a call header; got {first}"
    assert first["function"]["name"] in tool_names(bot_tools), f"expected one of the bot's tools; got {first}"
    arguments = "".join(delta["function"].get("arguments", "") for delta in deltas)
    assert arguments.startswith("{"), f"expected the arguments to stream as JSON text; got {arguments!r}"


def test_max_tokens_bounds_the_answer(llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str) -> None:
    answer = chat(llm, messages=a_whole_run(system_prompt, bot_tools)[0], tools=bot_tools, max_tokens=5)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length", f"expected finish_reason 'length' at max_tokens; got {choice}"
    assert answer["usage"]["completion_tokens"] == 5, f"expected 5 completion tokens; usage: {answer['usage']}"


def test_a_streamed_answer_ends_with_timings(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str
) -> None:
    chunks = stream_chat(llm, messages=a_whole_run(system_prompt, bot_tools)[0], tools=bot_tools, max_tokens=6)
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert text, f"expected streamed text deltas; got {chunks}"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length", f"expected the last chunk to end the answer; got {last}"
    timings = last.get("timings", {})
    assert {"prompt_n", "cache_n", "predicted_n"} <= timings.keys(), f"expected timings on the last chunk; got {last}"


def test_a_follow_up_reads_the_shared_prefix_from_the_cache(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str
) -> None:
    first, *_, follow_up = a_whole_run(system_prompt, bot_tools)
    before = chat(llm, messages=first, tools=bot_tools, max_tokens=1)
    after = chat(llm, messages=follow_up, tools=bot_tools, max_tokens=1)
    shared, total, timings = before["usage"]["prompt_tokens"], after["usage"]["prompt_tokens"], after["timings"]
    # The last token of a cached prompt is evaluated again, so one token of the shared prefix may count as new.
    assert timings["cache_n"] >= shared - 1, f"expected the first {shared} prompt tokens from the cache; got {timings}"
    assert timings["prompt_n"] <= total - shared + 1, (
        f"expected only the {total - shared} tokens beyond the first request evaluated; got {timings}"
    )


def test_a_trimmed_history_is_read_from_the_cache_too(
    llm: httpx.Client, bot_tools: list[dict[str, Any]], system_prompt: str
) -> None:
    def turn(number: int) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": f"Question {number}: " + "tell me about milk and bread " * 20},
            {"role": "assistant", "content": f"Answer {number}: " + "milk is white and bread is brown " * 20},
        ]

    system, question = {"role": "system", "content": system_prompt}, {"role": "user", "content": "And now?"}
    chat(llm, messages=[system, *turn(1), *turn(2), *turn(3), question], tools=bot_tools, max_tokens=1)
    # The oldest turn goes; llama-server's --cache-reuse shifts the kept turns (over 256 tokens) in its cache.
    timings = chat(llm, messages=[system, *turn(2), *turn(3), question], tools=bot_tools, max_tokens=1)["timings"]
    assert timings["prompt_n"] < 100, f"expected the kept turns from the cache, not evaluated again; got {timings}"


def test_an_over_long_prompt_is_refused_with_400(llm: httpx.Client) -> None:
    response = llm.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "milk " * CTX_SIZE}]})
    assert response.status_code == 400, f"expected 400 for a prompt over the context; got {response.status_code}"
    error = response.json()["error"]
    assert error["type"] == "exceed_context_size_error", f"expected exceed_context_size_error; got {error}"
    assert error["n_ctx"] == CTX_SIZE and error["n_prompt_tokens"] > CTX_SIZE, f"expected the sizes; got {error}"

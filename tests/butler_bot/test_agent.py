"""The agent loop against the scripted LLM stand-in (streamed, as llama-server streams) and the real MCP server."""

import json
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest

from butler_bot.agent import TOOLS_DOWN_NOTE, AgentRun
from butler_bot.budget import TokenBudget
from butler_bot.core import ModelUnavailable, Toolbox
from butler_bot.llm import LlmClient
from butler_bot.settings import BotSettings
from butler_bot.tools import McpTools
from tests.butler_bot.conftest import StandIn

SYSTEM = "You are a test butler."


class RecordedProgress:
    """What a chat would show: the answer as it grows, and each tool step."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.tools: list[str] = []

    async def text(self, so_far: str) -> None:
        self.texts.append(so_far)

    async def tool(self, name: str) -> None:
        self.tools.append(name)


def budget(context_tokens: int = 8192) -> TokenBudget:
    return TokenBudget(context_tokens=context_tokens, reserve_chars=2000, answer_tokens=256)


def agent(
    settings: BotSettings, toolbox: Toolbox, progress: RecordedProgress | None = None, **overrides: Any
) -> AgentRun:
    options: dict[str, Any] = {"max_steps": settings.agent_max_steps, "timeout": settings.llm_timeout} | overrides
    return AgentRun(LlmClient(settings), toolbox, progress or RecordedProgress(), budget(), **options)


async def open_tasks(tools: McpTools, user_id: int) -> list[str]:
    result = await tools.call(user_id, "tasks_list", {})
    assert not result.is_error, result.text
    return [task["title"] for task in (result.data or {})["tasks"]]


def tool_messages(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [message for message in entry["messages"] if message["role"] == "tool"]


async def test_runs_the_tool_the_model_asks_for_then_answers(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    standin.script(
        {
            "when": "buy milk",
            "replies": [
                {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "buy milk"}}]},
                {"content": "Added «buy milk»."},
            ],
        }
    )
    progress = RecordedProgress()
    run = agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id), progress)
    reply = await run.answer(SYSTEM, [], "add buy milk")

    assert reply.text == "Added «buy milk».", reply
    assert await open_tasks(mcp_tools, user_id) == ["buy milk"], "expected the task stored by the real server"
    assert progress.tools == ["tasks_add"], f"expected one progress line for the tool step, saw {progress.tools}"
    assert progress.texts and progress.texts[-1] == "Added «buy milk».", progress.texts
    assert [entry["status"] for entry in standin.log] == [200, 200], standin.log
    assert all(entry["messages"][0] == {"role": "system", "content": SYSTEM} for entry in standin.log), (
        "expected the system prompt first in every request of the run, after the tool call too"
    )
    assert all(entry["stream"] for entry in standin.log), "expected every request streamed"
    assert all(entry["max_tokens"] for entry in standin.log), "expected max_tokens on every request"
    offered = set(standin.log[0]["tools"])
    assert {"tasks_add", "tasks_list", "time_now"} <= offered, offered
    call_message = standin.log[1]["messages"][-2]
    (tool_message,) = tool_messages(standin.log[1])
    call_id = call_message["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", call_id), f"expected a 9-alphanumeric tool-call id, saw {call_id!r}"
    assert call_message["content"] == "", f"expected empty string content, never null; saw {call_message!r}"
    assert tool_message["tool_call_id"] == call_id and tool_message["name"] == "tasks_add", tool_message
    assert json.loads(tool_message["content"])["title"] == "buy milk", tool_message


async def test_a_repeated_call_that_changes_something_runs_once(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    add = {"tool_calls": [{"name": "tasks_add", "arguments": {"title": "call mum"}}]}
    standin.script({"when": "", "replies": [add, add, {"content": "Done."}]})
    reply = await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id)).answer(SYSTEM, [], "x")

    assert reply.text == "Done."
    assert await open_tasks(mcp_tools, user_id) == ["call mum"], "expected one task for two identical calls"
    first, second = (message["content"] for message in tool_messages(standin.log[2]))
    assert first == second, "expected the repeat to get the first call's result"


async def test_a_tool_error_reaches_the_model_marked_once(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    standin.script(
        {
            "when": "",
            "replies": [
                {"tool_calls": [{"name": "tasks_complete", "arguments": {"task_id": 987654}}]},
                {"content": "There is no such task."},
            ],
        }
    )
    await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id)).answer(SYSTEM, [], "done 987654")

    (result,) = tool_messages(standin.log[1])
    assert result["content"].startswith("Error: "), result
    assert result["content"].count("Error") == 1, f"expected the error marked once, saw {result['content']!r}"
    assert "Error executing tool" not in result["content"], result


async def test_unknown_tools_and_bad_arguments_go_back_to_the_model(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    standin.script(
        {
            "when": "",
            "replies": [
                {
                    "tool_calls": [
                        {"name": "launch_rockets", "arguments": {}},
                        {"name": "tasks_add", "arguments": '{"title": "unterminated'},
                        {"name": "tasks_add", "arguments": "[1, 2]"},
                    ]
                },
                {"content": "Sorry, I could not do that."},
            ],
        }
    )
    run = agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id))
    reply = await run.answer(SYSTEM, [], "do things")

    assert reply.text == "Sorry, I could not do that."
    assert await open_tasks(mcp_tools, user_id) == [], "expected no tool to run for an unknown name or bad arguments"
    results = [m["content"] for m in tool_messages(standin.log[1])]
    assert "no tool named 'launch_rockets'" in results[0] and "tasks_add" in results[0], results[0]
    assert "not valid JSON" in results[1], results[1]
    assert "must be a JSON object" in results[2], results[2]
    echoed = [call["function"]["arguments"] for call in standin.log[1]["messages"][-4]["tool_calls"]]
    assert echoed == ["{}", "{}", "{}"], f"expected unusable arguments echoed as valid JSON objects, saw {echoed}"


async def test_a_model_that_keeps_calling_tools_is_stopped_after_max_steps(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    standin.script({"when": "", "replies": [{"tool_calls": [{"name": "time_now", "arguments": {}}]}]})
    run = agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id), max_steps=4)
    reply = await run.answer(SYSTEM, [], "loop")

    assert reply.exhausted and reply.steps == 4 and reply.text == "", reply
    assert len(standin.log) == 4, f"expected exactly 4 model requests, saw {len(standin.log)}"
    assert [entry["tool_choice"] for entry in standin.log] == ["auto", "auto", "auto", "none"]


async def test_tool_call_markup_in_the_last_answer_never_reaches_the_user(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    markup = '[TOOL_CALLS][{"name": "time_now", "arguments": {}}]'
    standin.script({"when": "", "replies": [{"content": "Let me check. " + markup}]})
    progress = RecordedProgress()
    run = agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id), progress, max_steps=1)
    reply = await run.answer(SYSTEM, [], "what time is it")

    assert reply.exhausted and reply.text == "", reply
    assert not any("[TOOL" in text for text in progress.texts), f"expected no markup shown, saw {progress.texts}"


async def test_tool_server_down_means_no_tools_and_an_honest_model(
    standin: StandIn, make_settings: Callable[..., BotSettings]
) -> None:
    settings = make_settings(llm_base_url=standin.url, mcp_url=f"http://127.0.0.1:{closed_port()}/mcp")
    tools = McpTools(settings)
    reply = await agent(settings, tools.for_user(1)).answer(SYSTEM, [], "hi")
    await tools.close()

    assert reply.tools_unavailable
    assert standin.log[0]["tools"] == [], "expected no tools offered while the tool server is down"
    assert TOOLS_DOWN_NOTE in standin.log[0]["messages"][0]["content"]


async def test_history_that_does_not_fit_the_context_is_cut_by_blocks(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    turns = [
        [{"role": "user", "content": f"question {n} " + "x" * 400}, {"role": "assistant", "content": f"answer {n}"}]
        for n in range(30)
    ]
    run = AgentRun(
        LlmClient(make_settings(llm_base_url=standin.url)),
        mcp_tools.for_user(user_id),
        RecordedProgress(),
        TokenBudget(context_tokens=4096, reserve_chars=2000, answer_tokens=256),
        max_steps=2,
        timeout=10,
    )
    reply = await run.answer(SYSTEM, turns, "hi")

    assert 0 < reply.kept_turns < 30, f"expected some but not all of 30 long turns kept, saw {reply.kept_turns}"
    sent = standin.log[0]["messages"]
    assert sent[1]["content"] == turns[30 - reply.kept_turns][0]["content"], "expected the newest turns kept"
    assert sent[-1] == {"role": "user", "content": "hi"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_model_down_is_model_not_ready(make_settings: Callable[..., BotSettings], mcp_tools: McpTools) -> None:
    settings = make_settings(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ModelUnavailable) as failure:
        await agent(settings, mcp_tools.for_user(1)).answer(SYSTEM, [], "hi")
    assert failure.value.reason == "model_not_ready"


async def test_a_silent_model_gives_up_at_llm_timeout(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools
) -> None:
    standin.script(default={"delay": 10, "content": "too late"})
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url, llm_timeout=0.5), mcp_tools.for_user(1)).answer(
            SYSTEM, [], "hi"
        )
    assert failure.value.reason == "model_too_slow"


@pytest.mark.parametrize(("status", "reason"), [(503, "model_not_ready"), (500, "model_error")])
async def test_error_statuses(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, status: int, reason: str
) -> None:
    standin.script(default={"status": status})
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(1)).answer(SYSTEM, [], "hi")
    assert failure.value.reason == reason


async def test_a_streaming_answer_may_outlast_llm_timeout_while_it_makes_progress(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools
) -> None:
    words = " ".join(f"word{n}" for n in range(12))
    standin.script(default={"content": words, "stream_delay": 0.25})
    progress = RecordedProgress()
    settings = make_settings(llm_base_url=standin.url, llm_timeout=1)
    reply = await agent(settings, mcp_tools.for_user(1), progress).answer(SYSTEM, [], "talk")

    assert reply.text == words, "expected the whole answer although it took longer than LLM_TIMEOUT in all"
    assert len(progress.texts) > 3 and progress.texts[-1] == words, f"expected the text to grow: {progress.texts}"


async def test_a_rambling_model_is_cut_at_max_tokens_and_says_so(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools
) -> None:
    standin.script(default={"ramble": "and so on "})
    reply = await agent(make_settings(llm_base_url=standin.url, llm_max_tokens=40), mcp_tools.for_user(1)).answer(
        SYSTEM, [], "tell me everything"
    )

    assert reply.truncated and reply.text.startswith("and so on"), reply
    assert standin.log[0]["max_tokens"] == 40 and standin.log[0]["finish_reason"] == "length", standin.log[0]


async def test_malformed_tool_call_json_is_a_model_error_and_nothing_runs(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    standin.script(default={"malformed_tool_call": '[{"name": "tasks_add", "arguments": {"title": '})
    progress = RecordedProgress()
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id), progress).answer(
            SYSTEM, [], "add bread"
        )

    assert failure.value.reason == "model_error", failure.value
    assert not any("[TOOL" in text for text in progress.texts), progress.texts
    assert await open_tasks(mcp_tools, user_id) == []


async def test_an_over_long_prompt_is_the_servers_400_as_prompt_too_long(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools
) -> None:
    standin.script(n_ctx=64)
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(1)).answer(SYSTEM, [], "hello " * 80)
    assert failure.value.reason == "prompt_too_long"
    assert standin.log[0]["status"] == 400, standin.log[0]


async def test_a_tool_result_over_the_size_limit_reaches_the_model_cut(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools, user_id: int
) -> None:
    for n in range(8):
        await mcp_tools.call(user_id, "tasks_add", {"title": f"task {n} " + "x" * 150})
    standin.script(
        {"when": "", "replies": [{"tool_calls": [{"name": "tasks_list", "arguments": {}}]}, {"content": "Many."}]}
    )
    run = agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(user_id), result_max_chars=300)
    reply = await run.answer(SYSTEM, [], "list everything")

    (result,) = tool_messages(standin.log[1])
    assert reply.text == "Many." and len(result["content"]) < 400, f"expected the result cut: {result['content']!r}"
    assert result["content"].endswith("(cut: ask for less)"), result["content"][-60:]


async def test_a_clock_the_model_copies_from_the_messages_is_not_shown(
    standin: StandIn, make_settings: Callable[..., BotSettings], mcp_tools: McpTools
) -> None:
    standin.script(default={"content": "[09:41] Good morning!", "stream_delay": 0.05})
    progress = RecordedProgress()
    reply = await agent(make_settings(llm_base_url=standin.url), mcp_tools.for_user(1), progress).answer(
        SYSTEM, [], "[09:41] hi"
    )
    assert reply.text == "Good morning!", reply
    assert reply.said == "[09:41] Good morning!", "expected the history to keep what the model cached, as written"
    assert not any(text.startswith("[") for text in progress.texts), progress.texts

"""The agent loop against a scripted OpenAI-compatible stand-in, through the real `openai` client."""

import re
import socket
import time
from collections.abc import Callable

import pytest

from butler_bot.agent import TOOL_SERVER_DOWN, TOOLS_DOWN_NOTE, AgentRun
from butler_bot.llm import ChatModel, ModelUnavailable
from butler_bot.settings import BotSettings
from tests.butler_bot.conftest import StandIn
from tests.butler_bot.fakes import FakeToolbox

SYSTEM = "You are a test butler."


def agent(settings: BotSettings, toolbox: FakeToolbox, max_steps: int = 5) -> AgentRun:
    return AgentRun(ChatModel(settings), toolbox, max_steps=max_steps)


async def test_runs_the_tool_the_model_asks_for_then_answers(
    standin: StandIn, make_settings: Callable[..., BotSettings]
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
    toolbox = FakeToolbox()
    reply = await agent(make_settings(llm_base_url=standin.url), toolbox).answer(SYSTEM, [], "add buy milk")

    assert reply.text == "Added «buy milk».", reply
    assert toolbox.calls == [("tasks_add", {"title": "buy milk"})]
    assert [entry["status"] for entry in standin.log] == [200, 200], standin.log
    first, second = (entry["messages"] for entry in standin.log)
    assert first[0] == {"role": "system", "content": SYSTEM}
    assert standin.log[0]["tools"] == ["tasks_add", "time_now"]
    call_message, tool_message = second[-2], second[-1]
    call_id = call_message["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", call_id), f"expected a 9-alphanumeric tool-call id, saw {call_id!r}"
    assert call_message["content"] == "", f"expected empty string content, never null; saw {call_message!r}"
    assert tool_message == {"role": "tool", "tool_call_id": call_id, "content": '{"id": 1, "title": "buy milk"}'}


async def test_unknown_tools_and_bad_arguments_go_back_to_the_model(
    standin: StandIn, make_settings: Callable[..., BotSettings]
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
    toolbox = FakeToolbox()
    reply = await agent(make_settings(llm_base_url=standin.url), toolbox).answer(SYSTEM, [], "do things")

    assert reply.text == "Sorry, I could not do that."
    assert toolbox.calls == [], "expected no tool to run for an unknown name or unusable arguments"
    assert toolbox.forgotten == 1, "expected an unknown tool name to refresh the tool list next time"
    results = [m["content"] for m in standin.log[1]["messages"] if m["role"] == "tool"]
    assert "no tool named 'launch_rockets'" in results[0] and "tasks_add" in results[0], results[0]
    assert "not valid JSON" in results[1], results[1]
    assert "must be a JSON object" in results[2], results[2]
    echoed = [call["function"]["arguments"] for call in standin.log[1]["messages"][-4]["tool_calls"]]
    assert echoed == ["{}", "{}", "{}"], f"expected unusable arguments echoed as valid JSON objects, saw {echoed}"


async def test_a_model_that_keeps_calling_tools_is_stopped_after_max_steps(
    standin: StandIn, make_settings: Callable[..., BotSettings]
) -> None:
    standin.script({"when": "", "replies": [{"tool_calls": [{"name": "time_now", "arguments": {}}]}]})
    toolbox = FakeToolbox()
    reply = await agent(make_settings(llm_base_url=standin.url), toolbox, max_steps=4).answer(SYSTEM, [], "loop")

    assert reply.exhausted and reply.steps == 4, reply
    assert len(standin.log) == 4, f"expected exactly 4 model requests, saw {len(standin.log)}"
    assert [entry["tool_choice"] for entry in standin.log] == ["auto", "auto", "auto", "none"]
    assert len(toolbox.calls) == 3


async def test_tool_server_down_means_no_tools_and_an_honest_model(
    standin: StandIn, make_settings: Callable[..., BotSettings]
) -> None:
    reply = await agent(make_settings(llm_base_url=standin.url), FakeToolbox(down=True)).answer(SYSTEM, [], "hi")

    assert reply.tools_unavailable
    assert standin.log[0]["tools"] == [], "expected no tools offered while the tool server is down"
    assert TOOLS_DOWN_NOTE in standin.log[0]["messages"][0]["content"]


async def test_tool_server_failing_mid_run_is_reported_to_the_model(
    standin: StandIn, make_settings: Callable[..., BotSettings]
) -> None:
    standin.script(
        {
            "when": "",
            "replies": [{"tool_calls": [{"name": "tasks_add", "arguments": {"title": "x"}}]}, {"content": "No"}],
        }
    )
    toolbox = FakeToolbox()
    run = agent(make_settings(llm_base_url=standin.url), toolbox)
    listed = await toolbox.list()

    async def listed_then_down() -> list:
        toolbox.down = True
        return listed

    toolbox.list = listed_then_down  # type: ignore[method-assign]
    reply = await run.answer(SYSTEM, [], "add x")
    assert reply.tools_unavailable and reply.text == "No"
    assert standin.log[1]["messages"][-1]["content"] == TOOL_SERVER_DOWN


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_model_down_is_model_not_ready(make_settings: Callable[..., BotSettings]) -> None:
    settings = make_settings(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ModelUnavailable) as failure:
        await agent(settings, FakeToolbox()).answer(SYSTEM, [], "hi")
    assert failure.value.reason == "model_not_ready"


async def test_slow_model_gives_up_at_llm_timeout(standin: StandIn, make_settings: Callable[..., BotSettings]) -> None:
    standin.script(default={"delay": 10, "content": "too late"})
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url, llm_timeout=0.5), FakeToolbox()).answer(SYSTEM, [], "hi")
    elapsed = time.monotonic() - started
    assert failure.value.reason == "model_too_slow"
    assert elapsed < 1.5, f"expected to give up after LLM_TIMEOUT (0.5 s), took {elapsed:.1f} s"


@pytest.mark.parametrize(("status", "reason"), [(503, "model_not_ready"), (500, "model_error")])
async def test_error_statuses(
    standin: StandIn, make_settings: Callable[..., BotSettings], status: int, reason: str
) -> None:
    standin.script(default={"status": status})
    with pytest.raises(ModelUnavailable) as failure:
        await agent(make_settings(llm_base_url=standin.url), FakeToolbox()).answer(SYSTEM, [], "hi")
    assert failure.value.reason == reason

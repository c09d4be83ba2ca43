"""The compact tool schemas the model gets, built from the real MCP server's tools."""

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp.types import Tool
from pydantic import BaseModel

from butler_bot.tool_schemas import compact_schema, openai_tools
from tests.mcp_server.conftest import mcp_client, serve, server_settings

# Keywords the model does not need: the server fills in defaults, enforces bounds and answers a breach with an error.
DROPPED = {"title", "default", "$ref", "$defs", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum"}

# One call per tool, as a model would write it: the compact schema must accept what the server's accepts.
GOOD_CALLS: dict[str, list[dict[str, Any]]] = {
    "tasks_add": [{"title": "Buy milk"}, {"title": "Pay rent", "due": "2026-12-01", "priority": "high", "notes": ""}],
    "tasks_list": [{}, {"show": "due_today", "text": "milk", "limit": 5}],
    "tasks_complete": [{"task_id": 3}],
    "tasks_update": [{"task_id": 3, "title": "Buy oat milk", "clear_due": True}, {"task_id": 1, "reopen": True}],
    "tasks_delete": [{"task_id": 3}],
    "notes_save": [{"text": "The Wi-Fi password is hunter2"}, {"text": "x", "title": "Wi-Fi", "note_id": 2}],
    "notes_search": [{}, {"query": "wifi", "limit": 10}],
    "notes_delete": [{"note_id": 2}],
    "reminders_create": [
        {"text": "Call mum", "at": "2026-12-01T09:00"},
        {"text": "Tea", "after_minutes": 10},
        {"text": "Stand-up", "every": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0"},
    ],
    "reminders_list": [{}, {"limit": 3}],
    "reminders_cancel": [{"reminder_id": 4}, {"reminder_id": 4, "series": "pause"}],
    "time_now": [{}, {"timezone": "Asia/Tokyo"}],
    "time_set_timezone": [{"timezone": "Europe/Paris"}],
    "agenda_today": [{}, {"daily_at": "08:00"}, {"daily_at": "off"}],
}


@pytest.fixture(scope="session")
async def server_tools(tmp_path_factory: pytest.TempPathFactory) -> list[Tool]:
    """Every tool the real MCP server offers (all enabled), as the bot's MCP client lists them."""
    database = tmp_path_factory.mktemp("tools") / "butler.db"
    with serve(server_settings(f"sqlite+aiosqlite:///{database}")) as server:
        async with mcp_client(server.mcp_url, user_id=1) as client:
            return list((await client.list_tools()).tools)


def schema_nodes(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The schema and every schema under it (property names are not keywords, so `title` there is fine)."""
    yield schema
    for child in schema.get("properties", {}).values():
        yield from schema_nodes(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from schema_nodes(schema[key])
    for variant in schema.get("anyOf", []) + list(schema.get("$defs", {}).values()):
        yield from schema_nodes(variant)


def compact_by_name(tools: list[Tool]) -> dict[str, dict[str, Any]]:
    return {spec["function"]["name"]: spec["function"] for spec in openai_tools(tools)}


def test_every_tool_becomes_an_openai_function_tool(server_tools: list[Tool]) -> None:
    specs = openai_tools(server_tools)
    assert [spec["function"]["name"] for spec in specs] == [tool.name for tool in server_tools]
    assert sorted(GOOD_CALLS) == sorted(tool.name for tool in server_tools), "expected a good call for each tool"
    for spec, tool in zip(specs, server_tools, strict=True):
        assert spec["type"] == "function", spec
        assert spec["function"]["description"] == tool.description, f"expected {tool.name}'s own description"
        assert spec["function"]["parameters"]["type"] == "object", spec


def test_compact_schemas_carry_no_titles_defaults_nulls_refs_or_bounds(server_tools: list[Tool]) -> None:
    for name, function in compact_by_name(server_tools).items():
        for node in schema_nodes(function["parameters"]):
            assert not DROPPED & node.keys(), f"expected {name} to drop {sorted(DROPPED & node.keys())}: {node}"
            assert "null" not in str(node.get("type")), f"expected no null type in {name}: {node}"
            assert all(variant.get("type") != "null" for variant in node.get("anyOf", [])), f"{name}: {node}"


def test_every_parameter_and_required_name_and_enum_is_kept(server_tools: list[Tool]) -> None:
    compact = compact_by_name(server_tools)
    for tool in server_tools:
        kept = compact[tool.name]["parameters"]
        assert kept.get("required", []) == tool.input_schema.get("required", []), f"{tool.name}: {kept}"
        assert kept["properties"].keys() == tool.input_schema["properties"].keys(), f"{tool.name}: {kept}"
        for parameter, schema in kept["properties"].items():
            assert isinstance(schema.get("type"), str), f"expected {tool.name}.{parameter} to have one type: {schema}"
    show = compact["tasks_list"]["parameters"]["properties"]["show"]
    assert (show["type"], show["enum"]) == ("string", ["open", "done", "overdue", "due_today", "all"]), show
    # An optional enum (anyOf [enum, null] on the server) becomes the plain enum.
    priority = compact["tasks_update"]["parameters"]["properties"]["priority"]
    assert (priority["type"], priority["enum"]) == ("string", ["low", "normal", "high"]), priority


def test_compact_schemas_accept_and_refuse_what_the_servers_do(server_tools: list[Tool]) -> None:
    compact = compact_by_name(server_tools)
    for tool in server_tools:
        full = Draft202012Validator(tool.input_schema)
        small = Draft202012Validator(compact[tool.name]["parameters"])
        for arguments in GOOD_CALLS[tool.name]:
            assert full.is_valid(arguments), f"expected the server's {tool.name} schema to accept {arguments}"
            assert small.is_valid(arguments), f"expected the compact {tool.name} schema to accept {arguments}"
        for required in tool.input_schema.get("required", []):
            missing = {key: value for key, value in GOOD_CALLS[tool.name][0].items() if key != required}
            assert not small.is_valid(missing), f"expected {tool.name} without {required} to be refused"
    wrong_type = {"task_id": "three"}
    assert not Draft202012Validator(compact["tasks_complete"]["parameters"]).is_valid(wrong_type)


class Place(BaseModel):
    city: str
    country: str | None = None


class Trip(BaseModel):
    """A pydantic schema with `$defs`, as a tool taking a model parameter would have."""

    stops: list[Place]
    home: Place | None = None


def test_refs_are_inlined_and_nullable_models_made_plain() -> None:
    compact = compact_schema(Trip.model_json_schema())
    place = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}}
    place["required"] = ["city"]
    expected = {"type": "object", "properties": {"stops": {"type": "array", "items": place}, "home": place}}
    expected["required"] = ["stops"]
    assert compact == expected | {"description": Trip.__doc__}, f"expected {expected}, got {compact}"

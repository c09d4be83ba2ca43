"""MCP tools as compact OpenAI function tools: every schema token is read again by the model on each request.

The MCP server's schemas stay complete (titles, bounds, nullable types) for any MCP client; the model gets
only what it needs to write a call: types, enums, items, required names and descriptions. A bound the model
breaks is still enforced by the server, which answers with an error the model can act on.
"""

from typing import Any

from mcp.types import Tool

# JSON Schema keywords the model needs to write a valid call; the rest (title, default, bounds, format) goes.
KEPT_KEYWORDS = frozenset({"type", "description", "enum", "const", "items", "properties", "required", "anyOf"})
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def openai_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    """The tools in the OpenAI `tools` format, with compact parameter schemas."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or tool.title or tool.name,
                "parameters": compact_schema(tool.input_schema or EMPTY_OBJECT),
            },
        }
        for tool in tools
    ]


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `$ref` inlined, nullable types made plain and only the keywords in KEPT_KEYWORDS."""
    return _compact(schema, schema.get("$defs", {}))


def _compact(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    plain = _without_null(_inlined(node, defs))
    if plain is not node:
        # A collapsed anyOf may hold a `$ref` or a nullable type of its own.
        return _compact(plain, defs)
    compact: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEPT_KEYWORDS:
            continue
        if key == "properties":
            value = {name: _compact(child, defs) for name, child in value.items()}
        elif key == "items" and isinstance(value, dict):
            value = _compact(value, defs)
        elif key == "anyOf":
            value = [_compact(variant, defs) for variant in value]
        compact[key] = value
    return compact


def _inlined(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return node
    # The referring node's own keywords (a description, a default) win over the definition's.
    target = _inlined(defs[ref.removeprefix("#/$defs/")], defs)
    return target | {key: value for key, value in node.items() if key != "$ref"}


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` becomes X, `type: [T, "null"]` becomes T: the model leaves an optional argument out."""
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [name for name in kind if name != "null"]
        node = node | {"type": rest[0] if len(rest) == 1 else rest}
    variants = node.get("anyOf")
    if not isinstance(variants, list):
        return node
    others = [variant for variant in variants if variant.get("type") != "null"]
    if len(others) == len(variants):
        return node
    outer = {key: value for key, value in node.items() if key != "anyOf"}
    if len(others) == 1:
        # The outer description (set where the parameter is declared) wins over the inner type's.
        return others[0] | outer
    return outer | {"anyOf": others}

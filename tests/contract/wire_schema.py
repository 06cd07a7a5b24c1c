"""A deterministic JSON value for a JSON schema: the fake model's structured answers.

Used by :func:`tests.contract.wire_formats.generate` when the request carries
``response_format: {"type": "json_schema", "json_schema": {"schema": ...}}`` (OpenAI, vLLM:
https://platform.openai.com/docs/api-reference/chat/create,
https://docs.vllm.ai/en/latest/features/structured_outputs/) or llama-cpp-python's
``{"type": "json_object", "schema": ...}`` (``llama_cpp/llama_types.py``
``ChatCompletionRequestResponseFormat``). Real servers constrain decoding with the schema; the
fake answers the value :func:`schema_instance` builds, e.g. ``{"score": 4}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return _resolve(node, root)


def _clamp(value: float, schema: Mapping[str, Any]) -> float:
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    return value


def schema_instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A deterministic JSON value valid for ``schema``.

    ``default``/``const``/first ``enum`` value when given; integers ``4`` and numbers ``4.0``
    clamped into their bounds; strings ``"ok"``; booleans ``true``; every property of an object
    filled; arrays get ``maxItems`` items, else ``max(minItems, 3)``; ``$ref`` (to ``$defs``) and
    the first non-null ``anyOf``/``oneOf``/``allOf`` branch followed.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [_resolve(o, root) for o in schema.get(key) or []]
        options = [o for o in options if o.get("type") != "null"] or options
        if options:
            return schema_instance(options[0], root)
    type_ = schema.get("type")
    if isinstance(type_, list):
        type_ = next((t for t in type_ if t != "null"), "null")
    if type_ is None and "properties" in schema:
        type_ = "object"
    if type_ == "object":
        return {name: schema_instance(sub, root) for name, sub in (schema.get("properties") or {}).items()}
    if type_ == "array":
        n = schema["maxItems"] if "maxItems" in schema else max(schema.get("minItems", 0), 3)
        return [schema_instance(schema.get("items") or {}, root) for _ in range(n)]
    if type_ == "integer":
        return int(_clamp(4, schema))
    if type_ == "number":
        return float(_clamp(4.0, schema))
    if type_ == "boolean":
        return True
    if type_ == "null":
        return None
    return "ok" + "k" * max(0, schema.get("minLength", 0) - 2)

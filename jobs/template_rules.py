"""What the provider accepts from a report template, checked when the template is saved rather
than discovered as a 400 on every job: the reasoning efforts its model offers, and the rules
strict structured output sets for a custom output schema.
"""

from __future__ import annotations

from typing import Any

# Reasoning efforts per model family, as OpenAI's reasoning guide lists them (longest prefix
# wins). None: the model takes no `reasoning` settings at all.
_EFFORTS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("gpt-5-pro", frozenset({"high"})),
    ("gpt-5.2-pro", frozenset({"medium", "high", "xhigh"})),
    ("gpt-5.5-pro", frozenset({"medium", "high", "xhigh"})),
    ("gpt-5.6", frozenset({"none", "low", "medium", "high", "xhigh", "max"})),
    ("gpt-5.5", frozenset({"none", "low", "medium", "high", "xhigh"})),
    ("gpt-5.4", frozenset({"none", "low", "medium", "high", "xhigh"})),
    ("gpt-5.2", frozenset({"none", "low", "medium", "high", "xhigh"})),
    ("gpt-5.1", frozenset({"none", "low", "medium", "high"})),
    ("gpt-5", frozenset({"minimal", "low", "medium", "high"})),
    ("o1", frozenset({"low", "medium", "high"})),
    ("o3", frozenset({"low", "medium", "high"})),
    ("o4", frozenset({"low", "medium", "high"})),
    ("gpt-4", None),
    ("gpt-3.5", None),
    ("chatgpt-", None),
)
# Every value the API's ReasoningEffort takes, in order, for the template form.
EFFORT_CHOICES = [
    ("", "Model default"),
    ("none", "None"),
    ("minimal", "Minimal"),
    ("low", "Low"),
    ("medium", "Medium"),
    ("high", "High"),
    ("xhigh", "Extra high"),
    ("max", "Max"),
]

_UNKNOWN = object()


def model_efforts(model: str) -> frozenset[str] | None | object:
    """The efforts `model` accepts; None if it has no reasoning; _UNKNOWN for a family not listed."""
    if model.endswith("-chat-latest"):
        return None
    for prefix, efforts in sorted(_EFFORTS, key=lambda row: -len(row[0])):
        if model.startswith(prefix):
            return efforts
    return _UNKNOWN


def reasoning_effort_problem(*, model: str, effort: str) -> str:
    """Why `model` would refuse `effort` ("" when it accepts it or we cannot tell)."""
    if not effort:
        return ""
    efforts = model_efforts(model)
    if efforts is None:
        return f"{model} has no reasoning settings: leave the effort at the model default."
    if efforts is not _UNKNOWN and effort not in efforts:
        order = [value for value, _ in EFFORT_CHOICES if value in efforts]
        return f"{model} does not offer '{effort}'; it takes: {', '.join(order)}."
    return ""


# --- Strict structured output ------------------------------------------------------------------

# Keywords strict mode does not support (OpenAI's Structured Outputs guide).
_UNSUPPORTED = frozenset(
    {"allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "patternProperties",
     "unevaluatedProperties", "propertyNames", "contains", "minContains", "maxContains", "uniqueItems"}
)
MAX_PROPERTIES = 5000
MAX_DEPTH = 10
MAX_ENUM_VALUES = 1000


def strict_schema_problems(schema: Any) -> list[str]:
    """The strict-mode rules a JSON schema breaks (empty when it is fine): a root object that is
    not anyOf; every object closed (`additionalProperties: false`) with every property listed in
    `required`; no unsupported keywords; at most 5000 properties, 10 levels of nesting and 1000
    enum values in all."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return ["The schema must be a JSON object."]
    if schema.get("type") != "object":
        problems.append("The root must be an object (\"type\": \"object\").")
    if "anyOf" in schema:
        problems.append("The root must not be anyOf.")
    counts = {"properties": 0, "enum": 0}
    _walk(schema, "(root)", 1, problems, counts, definitions=schema.get("$defs", {}) or {})
    if counts["properties"] > MAX_PROPERTIES:
        problems.append(f"{counts['properties']} properties in all; strict mode allows {MAX_PROPERTIES}.")
    if counts["enum"] > MAX_ENUM_VALUES:
        problems.append(f"{counts['enum']} enum values in all; strict mode allows {MAX_ENUM_VALUES}.")
    return problems


def _walk(node: Any, path: str, depth: int, problems: list[str], counts: dict, *, definitions: dict) -> None:
    if not isinstance(node, dict):
        problems.append(f"{path}: a schema must be an object.")
        return
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels.")
        return
    for keyword in sorted(_UNSUPPORTED & node.keys()):
        problems.append(f"{path}: '{keyword}' is not supported in strict mode.")
    if "$ref" in node:
        ref = str(node["$ref"])
        if ref != "#" and not (ref.startswith("#/$defs/") and ref.rsplit("/", 1)[-1] in definitions):
            problems.append(f"{path}: $ref {ref} must point into this schema's $defs.")
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds or "properties" in node:
        properties = node.get("properties")
        if not isinstance(properties, dict):
            problems.append(f"{path}: an object must list its properties.")
            properties = {}
        if node.get("additionalProperties") is not False:
            problems.append(f"{path}: 'additionalProperties' must be false.")
        required = node.get("required") if isinstance(node.get("required"), list) else []
        missing = [name for name in properties if name not in required]
        if missing:
            problems.append(
                f"{path}: every property must be required (make optional ones nullable instead); missing {', '.join(missing)}."
            )
        counts["properties"] += len(properties)
        for name, sub in properties.items():
            _walk(sub, f"{path}.{name}", depth + 1, problems, counts, definitions=definitions)
    if isinstance(node.get("enum"), list):
        counts["enum"] += len(node["enum"])
    if "items" in node:
        _walk(node["items"], f"{path}[]", depth + 1, problems, counts, definitions=definitions)
    for index, sub in enumerate(node.get("anyOf") or []):
        _walk(sub, f"{path}.anyOf[{index}]", depth + 1, problems, counts, definitions=definitions)
    for name, sub in (node.get("$defs") or {}).items():
        _walk(sub, f"$defs.{name}", 1, problems, counts, definitions=definitions)

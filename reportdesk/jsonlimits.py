"""Limits on JSON we accept from outside (API bodies, provider webhooks).

Python's `json` recurses once per level of nesting, so a body of 100,000 `[` raises
RecursionError (a 500) instead of a parse error; and it accepts strings the database cannot
store: a lone `\\ud800` escape (half of a UTF-16 pair, no character at all) and NUL
(PostgreSQL text refuses it). `json_problem` names what is wrong with parsed JSON, so callers
refuse it with a 400 before anything is stored or echoed.
"""

from __future__ import annotations

from typing import Any

# Deeper than any body of ours needs (a job's sources nest four levels), shallow enough for
# every recursive walk that follows (serializers, JSONField, json.dumps).
MAX_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why this string cannot be stored, or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate escape (\\ud800–\\udfff)"
    return None


def json_problem(data: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why this parsed JSON is refused (too deep, or a string that cannot be stored), or None.
    Walks without recursion, so any depth is safe to inspect."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
            for key, item in items:
                if key is not None and (problem := text_problem(key)):
                    return f"a key {problem}"
                stack.append((item, depth + 1))
        elif isinstance(value, str) and (problem := text_problem(value)):
            return f"a string {problem}"
    return None

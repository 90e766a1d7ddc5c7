"""Decoding untrusted JSON (HTTP bodies, MQTT uplinks) into plain values, with every hostile
shape turned into InvalidParameterError (1001) instead of an exception that escapes.

orjson refuses lone surrogates (which SQLite and PostgreSQL cannot store) and numbers that do
not fit a double; the stdlib would take both, and a 5,000-digit integer would raise ValueError.
Nesting is bounded far below orjson's own 1,024 levels, so no later step (validation, re-encoding
for the database) can recurse deeply.
"""

from __future__ import annotations

from typing import Any

import orjson

from contract.errors import InvalidParameterError

# Deeper than any command or body we accept needs (attachments and profile extras included).
MAX_DEPTH = 32


def decode_json(raw: bytes | str, *, what: str = "payload", max_depth: int = MAX_DEPTH) -> Any:
    """The value in `raw`, or InvalidParameterError naming what was wrong."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameterError(f"{what} is not valid UTF-8 JSON: {exc}") from exc
    if _openings(raw) > max_depth:  # else nothing in it can nest deeper: no walk needed
        _check_depth(value, max_depth, what)
    return value


def _openings(raw: bytes | str) -> int:
    """An upper bound on the nesting depth: every level opens with a bracket. Two C-speed
    counts, where walking the decoded value cost half of a typical uplink's decoding."""
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[")
    return raw.count(b"{") + raw.count(b"[")


def _check_depth(value: Any, max_depth: int, what: str) -> None:
    # Iterative, so checking a deep value cannot itself overflow the stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise InvalidParameterError(f"{what} is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))

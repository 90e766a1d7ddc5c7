"""Parsing of the operator settings: `MQIM_LOG_FORMAT` and `MQIM_CORS_ORIGINS`
(docs/operations.md). Kept apart from settings.py, which holds the `Settings` fields."""

from __future__ import annotations

import re

LOG_FORMATS = ("text", "json")
# An origin as a browser sends it: scheme://host[:port], no path, no trailing slash.
_ORIGIN_RE = re.compile(r"^https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")


def parse_cors_origins(value: str) -> list[str]:
    """Empty (CORS off), `*` (any origin), or comma-separated origins; ValueError otherwise."""
    origins = [o.strip() for o in value.split(",") if o.strip()]
    if origins == ["*"]:
        return origins
    for origin in origins:
        if not _ORIGIN_RE.match(origin):
            raise ValueError(
                "MQIM_CORS_ORIGINS must be '*' or origins such as https://app.example.com "
                f"(scheme, host and optional port; no path); got {origin!r}"
            )
    return origins

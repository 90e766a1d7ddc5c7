"""The two log formats of every `mqim` process (`--log-format`, MQIM_LOG_FORMAT), stdlib only.

- text: `2026-11-29 15:17:14,518 INFO    api.requests: GET /api/me 200 2.1ms user=u1`
- json: one object per line, `{"ts", "level", "logger", "msg", ...}`, plus the structured fields
  a record carries in `extra={"fields": {...}}` (the request and connection lines do), and
  `exc` (the formatted traceback) when there is one, so a traceback never spans lines.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Root handler on stderr in the chosen format; the libraries' chatter held at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(
        TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # amqtt logs every connection at INFO, and "transitions" every state change; mqim logs its
    # own one line per connect, disconnect and refusal (broker/embedded/observe.py).
    for noisy in ("amqtt", "transitions", "uvicorn.error", "tortoise", "mqtt", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

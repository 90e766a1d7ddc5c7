"""Parsing uplink payloads into typed commands; every way a payload can be wrong becomes a
CommandError with a DESIGN.md code, never an exception that escapes the bridge.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from models.errors import InvalidParameterError, MqimError
from models.message import MessageContent
from models.validation import describe_validation_error

SUPPORTED_OPS = ("send", "typing", "read", "presence")
# Named by DESIGN.md but served by later releases: refused with a clear message, not "unknown".
PLANNED_OPS = ("delivered", "react", "unreact", "unsend")


class CommandError(Exception):
    def __init__(self, error: MqimError, req: str | None) -> None:
        super().__init__(error.msg)
        self.error = error
        self.req = req


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    req: StrictStr | None = Field(default=None, max_length=64)


class SendCommand(_Command, MessageContent):
    op: Literal["send"]
    thread_id: StrictStr
    client_msg_id: StrictStr


class TypingCommand(_Command):
    op: Literal["typing"]
    thread_id: StrictStr
    is_typing: StrictBool = True


class ReadCommand(_Command):
    op: Literal["read"]
    thread_id: StrictStr
    seq: Annotated[StrictInt, Field(ge=0)]


class PresenceCommand(_Command):
    """Also what a client sets as its will, so a killed client goes offline."""

    op: Literal["presence"]
    status: Literal["online", "idle", "offline"]


Command = SendCommand | TypingCommand | ReadCommand | PresenceCommand
_BY_OP: dict[str, type[Command]] = {
    "send": SendCommand, "typing": TypingCommand, "read": ReadCommand,
    "presence": PresenceCommand,
}


def parse_command(payload: bytes, max_bytes: int) -> Command:
    """The command in `payload`, or CommandError (with the `req` when it could be read)."""
    if len(payload) > max_bytes:
        raise CommandError(InvalidParameterError(f"payload is over {max_bytes} bytes"), None)
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        error = InvalidParameterError(f"payload is not UTF-8 JSON: {exc}")
        raise CommandError(error, None) from exc
    if not isinstance(raw, dict):
        raise CommandError(InvalidParameterError("payload must be a JSON object"), None)
    req = raw.get("req") if isinstance(raw.get("req"), str) else None
    op = raw.get("op")
    model = _BY_OP.get(op) if isinstance(op, str) else None
    if model is None:
        if op in PLANNED_OPS:
            msg = f"op {op!r} is not supported by this server yet"
        else:
            msg = f"unknown op {op!r}; expected one of {', '.join(SUPPORTED_OPS)}"
        raise CommandError(InvalidParameterError(msg), req)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise CommandError(InvalidParameterError(f"invalid {op} command: {problems}"), req) from exc

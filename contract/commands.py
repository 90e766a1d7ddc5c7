"""Parsing uplink payloads into typed commands; every way a payload can be wrong becomes a
CommandError with its error code (docs/mqtt.md), never an exception that escapes the bridge.

The error carries the command's `req` whenever the payload names one, even when the payload is
too large or not JSON at all (a bounded scan finds it), so a client knows which command failed
instead of retrying it forever.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from contract.errors import InvalidParameterError, MqimError, PayloadTooLargeError
from contract.fields import ID_PATTERN, INT_MAX, ClientMsgIdField, IdField
from contract.jsonin import decode_json
from contract.validation import describe_validation_error

REQ_MAX = 64
MAX_MENTIONS = 50
MAX_ATTACHMENTS = 10
# A mention: a user id, or "@all" (everyone in the thread; owner and admins only).
MentionField = Annotated[StrictStr, StringConstraints(pattern=f"^(?:{ID_PATTERN}|@all)$")]
# How far into an unreadable payload to look for its `req`.
# Every payload within the default size cap, and the start of a larger one: a linear scan.
REQ_SCAN_BYTES = 64 * 1024
_REQ_KEY = b'"req"'
_REQ_RE = re.compile(rb'"req"\s*:\s*"((?:[^"\\\x00-\x1f]|\\["\\/]){1,%d})"' % REQ_MAX)
# How far past the key its value may end: room for spacing and an escaped 64-character req.
_REQ_MATCH_BYTES = 256

SUPPORTED_OPS = ("send", "typing", "read", "delivered", "presence", "react", "unreact", "unsend",
                 "edit", "vote")
EMOJI_MAX = 32
MAX_POLL_OPTIONS = 10


class CommandError(Exception):
    def __init__(self, error: MqimError, req: str | None) -> None:
        super().__init__(error.msg)
        self.error = error
        self.req = req


class MessageContent(BaseModel):
    """What a client sends as a message, the same over HTTP and MQTT (type-checked only; the
    models apply the content rules)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    # A name, or one of seed 004's numbers (contract/content.py maps them).
    type: StrictStr | Annotated[StrictInt, Field(ge=0, le=INT_MAX)] = Field(
        default="text", union_mode="left_to_right")
    body: StrictStr | None = None
    # Typed per `type` (contract/content.py); bounded in size by the payload cap.
    content: dict[str, Any] | None = None
    reply_to: IdField | None = None
    # Counts are bounded while parsing too, so a hostile list is refused before it is walked.
    mentions: list[MentionField] = Field(default_factory=list, max_length=MAX_MENTIONS)
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    req: StrictStr | None = Field(default=None, max_length=REQ_MAX)


class SendCommand(_Command, MessageContent):
    op: Literal["send"]
    thread_id: IdField
    client_msg_id: ClientMsgIdField


class TypingCommand(_Command):
    op: Literal["typing"]
    thread_id: IdField
    is_typing: StrictBool = True


class ReadCommand(_Command):
    op: Literal["read"]
    thread_id: IdField
    seq: Annotated[StrictInt, Field(ge=0, le=INT_MAX)]


class DeliveredCommand(_Command):
    """The client received the thread up to `seq` (docs/design.md section 10)."""

    op: Literal["delivered"]
    thread_id: IdField
    seq: Annotated[StrictInt, Field(ge=0, le=INT_MAX)]


class PresenceCommand(_Command):
    """Also what a client sets as its will, so a killed client goes offline."""

    op: Literal["presence"]
    status: Literal["online", "idle", "offline"]


EmojiField = Annotated[StrictStr, Field(min_length=1, max_length=EMOJI_MAX)]


class ReactCommand(_Command):
    op: Literal["react"]
    thread_id: IdField
    message_id: IdField
    emoji: EmojiField


class UnreactCommand(_Command):
    op: Literal["unreact"]
    thread_id: IdField
    message_id: IdField
    emoji: EmojiField


class UnsendCommand(_Command):
    op: Literal["unsend"]
    thread_id: IdField
    message_id: IdField


class EditCommand(_Command):
    """The new body and/or content; what is left out stays as it was."""

    op: Literal["edit"]
    thread_id: IdField
    message_id: IdField
    body: StrictStr | None = None
    content: dict[str, Any] | None = None


class VoteCommand(_Command):
    """The caller's whole choice: it replaces their earlier votes; an empty list retracts."""

    op: Literal["vote"]
    thread_id: IdField
    poll_id: IdField
    option_ids: list[Annotated[StrictInt, Field(ge=0, le=INT_MAX)]] = Field(
        max_length=MAX_POLL_OPTIONS)


Command = (SendCommand | TypingCommand | ReadCommand | DeliveredCommand | PresenceCommand
           | ReactCommand | UnreactCommand | UnsendCommand | EditCommand | VoteCommand)
_BY_OP: dict[str, type[Command]] = {
    "send": SendCommand, "typing": TypingCommand, "read": ReadCommand,
    "delivered": DeliveredCommand, "presence": PresenceCommand, "react": ReactCommand,
    "unreact": UnreactCommand, "unsend": UnsendCommand, "edit": EditCommand, "vote": VoteCommand,
}


def parse_command(payload: bytes, max_bytes: int) -> Command:
    """The command in `payload`, or CommandError (with the `req` when it could be read)."""
    if len(payload) > max_bytes:
        error = PayloadTooLargeError(f"payload is over {max_bytes} bytes")
        raise CommandError(error, scan_req(payload))
    try:
        raw = decode_json(payload)
    except InvalidParameterError as exc:
        raise CommandError(exc, scan_req(payload)) from exc
    if not isinstance(raw, dict):
        raise CommandError(InvalidParameterError("payload must be a JSON object"), None)
    req = raw.get("req")
    req = req if isinstance(req, str) and 0 < len(req) <= REQ_MAX else None
    op = raw.get("op")
    model = _BY_OP.get(op) if isinstance(op, str) else None
    if model is None:
        shown = repr(op)[:40] if isinstance(op, str) else type(op).__name__
        msg = f"unknown op {shown}; expected one of {', '.join(SUPPORTED_OPS)}"
        raise CommandError(InvalidParameterError(msg), req)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise CommandError(InvalidParameterError(f"invalid {op} command: {problems}"), req) from exc


def scan_req(payload: bytes) -> str | None:
    """The `req` named near the start of a payload that cannot be parsed whole (too large, not
    JSON): the first `"req"` key in its first REQ_SCAN_BYTES bytes, if a plain-text value follows.

    One C-speed find and one bounded match, whatever the payload: trying the pattern at every
    `"req"` of a hostile payload cost milliseconds per uplink, which other users' commands in
    the same bridge would wait for.
    """
    start = payload.find(_REQ_KEY, 0, REQ_SCAN_BYTES)
    if start < 0:
        return None
    found = _REQ_RE.match(payload, start, start + _REQ_MATCH_BYTES)
    if found is None:
        return None
    try:
        text = found.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.replace('\\"', '"').replace("\\\\", "\\").replace("\\/", "/")

"""The OpenAPI rows of the message routes (docs/messages.md): history and sending, reactions,
unsend, edits, polls, forwarding and the images set by upload. Merged into
api/openapi_routes.OPERATIONS; the same rules hold (a row per served route, the types the route
really uses)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.openapi_ops import Op, Query, int_in, limit_query
from api.routes.msgactions import EditBody, ReactBody
from api.schemas import SendBody
from contract import governance as gov
from contract import msgactions as ma
from contract import polls as pl
from contract.errors import (
    BlockedError,
    CannotActOnOwnerError,
    ClientMsgIdConflictError,
    ContentInvalidError,
    ForbiddenError,
    InvalidParameterError,
    MessageNotFoundError,
    MutedInThreadError,
    NotAdminError,
    NotAMemberError,
    NotOwnerError,
    NotYourMessageError,
    PollClosedError,
    RateLimitedError,
    RoomFullError,
    ThreadDissolvedError,
    ThreadNotFoundError,
    UploadNotFoundError,
    UploadTooLargeError,
    WindowPassedError,
)
from contract.events import TimelineEntry
from contract.fields import ID_PATTERN
from contract.http import SendResult, UserSelf
from models import message

_T = "/api/threads/{thread_id:id}"
_MSG = f"{_T}/messages/{{message_id:id}}"
_MID = Annotated[str, Field(pattern=f"^(?:{ID_PATTERN})$")]
_THREAD = (ThreadNotFoundError, NotAMemberError)
_ACT = (*_THREAD, MessageNotFoundError)
_SEND = (*_THREAD, ThreadDissolvedError, MutedInThreadError, NotAdminError, BlockedError,
         ContentInvalidError, RateLimitedError)

MESSAGE_OPERATIONS: dict[tuple[str, str], Op] = {
    # history and sending
    ("GET", f"{_T}/messages"): Op(
        "A thread's timeline entries, oldest first, messages in their current state",
        data=list[TimelineEntry], query=(
            Query("after_seq", int_in(0), "entries after this seq"),
            Query("before_seq", int_in(0), "entries before this seq"),
            Query("after_id", _MID, "entries after this entry (not with after_seq)"),
            Query("before_id", _MID, "entries before this entry (not with before_seq)"),
            limit_query(message.HISTORY_LIMIT_DEFAULT, message.HISTORY_LIMIT_MAX)),
        errors=_ACT),
    ("POST", f"{_T}/messages"): Op(
        "Send a message (JSON; or multipart/form-data: `file` + optional `body`, "
        "`client_msg_id`, `type`, `reply_to`)", body=SendBody, data=SendResult,
        statuses=(201, 200),
        errors=(*_SEND, ClientMsgIdConflictError, MessageNotFoundError, RoomFullError,
                UploadNotFoundError, UploadTooLargeError)),
    ("GET", _MSG): Op("One timeline entry in its current state", data=TimelineEntry,
                      errors=_ACT),
    ("GET", f"{_MSG}/replies"): Op(
        "The replies to a message, oldest first, in their current state",
        data=list[TimelineEntry], query=(
            Query("after_seq", int_in(0), "replies after this seq (default: from the first)"),
            Query("before_seq", int_in(0), "replies before this seq"),
            limit_query(message.HISTORY_LIMIT_DEFAULT, message.HISTORY_LIMIT_MAX)),
        errors=_ACT),
    # reactions, unsend, edit (contract/msgactions.py)
    ("POST", f"{_MSG}/reactions"): Op(
        "React to a message (a repeat answers seq null)", body=ReactBody, data=ma.ActionResult,
        errors=(*_ACT, ContentInvalidError)),
    ("DELETE", f"{_MSG}/reactions/{{emoji:path}}"): Op(
        "Take back one's own reaction (none there: seq null)", data=ma.ActionResult,
        errors=(*_ACT, ContentInvalidError, InvalidParameterError)),
    ("DELETE", _MSG): Op(
        "Unsend a message for everyone (erases its body, content and files)",
        data=ma.ActionResult, errors=(*_ACT, ForbiddenError, WindowPassedError)),
    ("PATCH", _MSG): Op(
        "Edit one's own message (no change: seq null)", body=EditBody, data=ma.ActionResult,
        errors=(*_ACT, NotYourMessageError, WindowPassedError, ContentInvalidError)),
    ("GET", f"{_MSG}/edits"): Op(
        "Every version of a message, oldest first", data=list[ma.MessageVersionView],
        errors=_ACT),
    # polls and forwarding (contract/polls.py)
    ("POST", f"{_T}/polls"): Op(
        "Create a poll (a message of type poll)", body=pl.CreatePollBody, data=pl.PollCreated,
        statuses=(201,), errors=_SEND),
    ("GET", f"{_T}/polls/{{poll_id:id}}"): Op(
        "A poll as it stands, with its voters", data=pl.PollView, errors=_ACT),
    ("POST", f"{_T}/polls/{{poll_id:id}}/votes"): Op(
        "Vote in a poll (the list replaces your votes; empty retracts)", body=pl.VoteBody,
        data=ma.ActionResult, errors=(*_ACT, ThreadDissolvedError, PollClosedError)),
    ("POST", f"{_T}/polls/{{poll_id:id}}/close"): Op(
        "Close a poll (its creator, the owner or an admin)", data=ma.ActionResult,
        errors=(*_ACT, ThreadDissolvedError, ForbiddenError)),
    ("POST", f"{_MSG}/forward"): Op(
        "Forward a message into other threads", body=pl.ForwardBody, data=list[pl.Forwarded],
        statuses=(201,), errors=(*_SEND, MessageNotFoundError)),
    # images set by upload (multipart/form-data, field `file`)
    ("PUT", "/api/me/avatar"): Op(
        "Set the caller's avatar from an image (multipart/form-data, field `file`)",
        data=UserSelf, errors=(InvalidParameterError, ContentInvalidError, UploadTooLargeError)),
    ("PUT", f"{_T}/image"): Op(
        "Set a thread's image from an image (multipart/form-data, field `file`)",
        data=gov.ThreadUpdated,
        errors=(*_THREAD, NotAdminError, NotOwnerError, CannotActOnOwnerError,
                ThreadDissolvedError, ForbiddenError, ContentInvalidError, UploadTooLargeError)),
}

"""Every downlink event mqim publishes, one model each, as a union discriminated by `type`.

Thread events go out on `{prefix}/t/{thread}`, personal events on `{prefix}/u/{user}` (see
docs/mqtt.md). Timeline entries (`message`, `message_reply`, `event`) are also what history
returns over HTTP, so a client parses one shape whichever way an entry reached it. Models are
frozen and refuse unknown fields: a test validates every event the end-to-end suite receives
against `DownlinkEvent`, so the wire cannot drift from this module.

Times are epoch milliseconds. `encode` is the one way an event becomes bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contract.http import (
    MemberSettings,
    PresenceResult,
    ReadResult,
    SendResult,
    UserProfile,
    UserSelf,
)
from contract.msgactions import ActionResult
from contract.receipts import DeliveredResult


class WireEvent(BaseModel):
    """Base of every downlink event."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Entry(WireEvent):
    """What every timeline entry carries: its place in the thread."""

    thread_id: str
    seq: int
    message_id: str
    created_at: int


class ForwardedFrom(WireEvent):
    """Where a forwarded message came from; `sender_id` is the original author."""

    thread_id: str
    message_id: str
    sender_id: str | None


MessageStatus = Literal["sent", "delivered", "read"]


class MessageEvent(_Entry):
    """A message (`message_reply` when it replies to another), on the thread topic.

    Published as sent; history returns it in its current state: the latest edit (`edited_at`),
    its `reactions` and `reply_count`, and, once unsent, a tombstone (`deleted`, no body, content,
    attachments or mentions). `status` is given to the sender only, in history.
    """

    type: Literal["message", "message_reply"]
    sender_id: str | None
    client_msg_id: str | None
    msg_type: str
    body: str | None
    reply_to: str | None
    mentions: list[str]
    attachments: list[dict[str, Any]]
    content: dict[str, Any] | None = None
    forwarded_from: ForwardedFrom | None = None
    edited_at: int | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = Field(default={})  # copied per instance by pydantic
    reply_count: int = 0
    status: MessageStatus | None = Field(default=None, exclude_if=lambda value: value is None)


class _ActionEntry(WireEvent):
    """An action on a message or poll, with its own seq; `message_id` names the message acted on
    (an action entry is identified by `thread_id` + `seq`)."""

    thread_id: str
    seq: int
    created_at: int


class MessageReactionEvent(_ActionEntry):
    type: Literal["message_reaction"]
    message_id: str
    user_id: str
    reaction: str
    action: Literal["add", "remove"]


class MessageUnsendEvent(_ActionEntry):
    type: Literal["message_unsend"]
    message_id: str
    deleted_by: str
    deletionTimestamp: int  # noqa: N815  # seed 000's field name, kept on the wire


class MessageEditEvent(_ActionEntry):
    """The new version; once the message is unsent, its edits' `body` and `content` are erased."""

    type: Literal["message_edit"]
    message_id: str
    body: str | None
    content: dict[str, Any] | None
    edited_at: int


class PollOptionState(WireEvent):
    option_id: int
    votes: int
    voters: list[str]


class PollUpdateEvent(_ActionEntry):
    type: Literal["poll_update"]
    message_id: str
    poll_id: str
    options: list[PollOptionState]
    closed: bool


class ThreadLogEvent(_Entry):
    """A change to the thread itself (members joined or left, renamed, ...), with its seq."""

    type: Literal["event"]
    author: str | None
    logMessageType: str  # noqa: N815  # the seed documents' field names, kept on the wire
    logMessageData: dict[str, Any]  # noqa: N815
    logMessageBody: str  # noqa: N815


class TypingEvent(WireEvent):
    type: Literal["typ"]
    thread_id: str
    from_: str = Field(alias="from")
    is_typing: bool


class ReadReceiptEvent(WireEvent):
    """A member read up to `seq` (to the thread; no seq of its own)."""

    type: Literal["read_receipt"]
    thread_id: str
    reader: str
    seq: int
    time: int


class DeliveryReceiptEvent(WireEvent):
    """A member's devices received the thread up to `seq` (to the thread; no seq of its own)."""

    type: Literal["delivery_receipt"]
    thread_id: str
    user_id: str
    seq: int


class ReadSyncEvent(WireEvent):
    """Your own read mark moved (to your other devices)."""

    type: Literal["read"]
    thread_id: str
    seq: int
    time: int


class PresenceEvent(WireEvent):
    type: Literal["presence"]
    user_id: str
    status: Literal["online", "idle", "offline"]
    last_seen_at: int | None


class AckEvent(WireEvent):
    """The answer to an uplink command that carried a `req`."""

    type: Literal["ack"]
    req: str | None
    # send, read, delivered, presence and the message actions answer with their result;
    # typing with {}.
    data: (SendResult | ReadResult | DeliveredResult | PresenceResult | ActionResult
           | dict[str, Any])


class ErrorEvent(WireEvent):
    """An uplink command refused (`req` is null only when the payload named none)."""

    type: Literal["error"]
    req: str | None
    code: int
    error: str
    msg: str
    retry_after: int | None = Field(default=None, exclude_if=lambda value: value is None)


class KickedEvent(WireEvent):
    """A login session ended (sign-out elsewhere, replaced, banned): that device disconnects."""

    type: Literal["kicked"]
    session_id: str
    reason: str


class UserUpdatedEvent(WireEvent):
    """A profile changed: the owner's devices get their own view, friends the public one."""

    type: Literal["user_updated"]
    user: UserSelf | UserProfile


class ThreadBrief(WireEvent):
    thread_id: str
    type: str
    name: str | None
    participant_ids: list[str]


class ThreadAddedEvent(WireEvent):
    type: Literal["thread_added"]
    thread_id: str
    by: str
    thread: ThreadBrief


class ThreadRemovedEvent(WireEvent):
    """The user is no longer in the thread (or it ended): `reason` says why."""

    type: Literal["thread_removed"]
    thread_id: str
    by: str
    reason: Literal["left", "removed", "dissolved", "deleted", "declined"] = "removed"


class ThreadSettingsEvent(WireEvent):
    """The user's own settings of a thread changed (on another device, say): the new values."""

    type: Literal["thread_settings"]
    thread_id: str
    settings: MemberSettings


class InvitationEvent(WireEvent):
    """To the owner and admins: someone waits to be let in (`inviter_id` None: they asked to
    join). To the invitee, once decided, `status` approved or rejected."""

    type: Literal["invitation"]
    invitation_id: int
    thread_id: str
    user_id: str
    inviter_id: str | None
    status: Literal["pending", "approved", "rejected"]
    created_at: int


class FriendRequestEvent(WireEvent):
    type: Literal["friend_request"]
    request_id: int
    from_: UserProfile = Field(alias="from")
    message: str
    created_at: int


class FriendRequestAcceptedEvent(WireEvent):
    type: Literal["friend_request_accepted"]
    request_id: int
    user: UserProfile
    decided_at: int


class FriendRequestRejectedEvent(WireEvent):
    type: Literal["friend_request_rejected"]
    request_id: int
    user_id: str
    decided_at: int


class FriendRemovedEvent(WireEvent):
    type: Literal["friend_removed"]
    user_id: str


ActionEntry = MessageReactionEvent | MessageUnsendEvent | MessageEditEvent | PollUpdateEvent
TimelineEvent = MessageEvent | ThreadLogEvent | ActionEntry
TimelineEntry = Annotated[TimelineEvent, Field(discriminator="type")]

DownlinkEvent = Annotated[
    MessageEvent | ThreadLogEvent | MessageReactionEvent | MessageUnsendEvent | MessageEditEvent
    | PollUpdateEvent | TypingEvent | ReadReceiptEvent | DeliveryReceiptEvent | ReadSyncEvent
    | PresenceEvent | AckEvent | ErrorEvent | KickedEvent | UserUpdatedEvent | ThreadAddedEvent
    | ThreadRemovedEvent | ThreadSettingsEvent | InvitationEvent | FriendRequestEvent
    | FriendRequestAcceptedEvent | FriendRequestRejectedEvent | FriendRemovedEvent,
    Field(discriminator="type"),
]
DOWNLINK_EVENTS: TypeAdapter[DownlinkEvent] = TypeAdapter(DownlinkEvent)


def encode(event: BaseModel) -> bytes:
    """The bytes of an event on the wire (field aliases such as `from` applied)."""
    return event.model_dump_json(by_alias=True).encode()


def parse(payload: bytes | str) -> DownlinkEvent:
    """An event read back from the wire (clients, tests); raises pydantic's ValidationError."""
    return DOWNLINK_EVENTS.validate_json(payload)

"""The rules and writes behind reactions, unsend and edit (docs/messages.md), each inside the
transaction `models.msgtarget.acting_on` opened: the thread is locked, so two actions on one
thread never interleave and a check stays true until its write commits.

Each returns the action entry it wrote, or None when nothing changed (a repeated reaction, an
unreact of what is not there, a second unsend, an edit to what the message already says): those
write no entry and publish nothing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from contract.commands import EMOJI_MAX
from contract.content import parse_content
from contract.errors import (
    ContentInvalidError,
    ForbiddenError,
    InvalidParameterError,
    MessageNotFoundError,
    NotYourMessageError,
    WindowPassedError,
)
from models.clock import epoch_ms, utcnow
from models.message import EntryKind, Message, visible_range
from models.msgedit import MessageVersion
from models.msgfile import unlink_files
from models.msgtarget import Target, append_action
from models.poll import Poll
from models.reaction import Reaction
from models.thread import is_admin

# Bounds that keep one message's reactions (rendered in every history page) small.
MAX_EMOJIS_PER_MESSAGE = 50
MAX_REACTIONS_PER_USER = 20


def check_emoji(emoji: str) -> None:
    """1 to EMOJI_MAX characters (1001), no control character, lone surrogate or whitespace-only
    text (4003). Format characters stay allowed: emoji sequences join with U+200D."""
    if not 1 <= len(emoji) <= EMOJI_MAX:
        raise InvalidParameterError(f"emoji must be 1 to {EMOJI_MAX} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in emoji):
        raise ContentInvalidError("emoji must not contain control characters")
    if not emoji.strip():
        raise ContentInvalidError("emoji must not be blank")


async def add_reaction(t: Target, user_id: str, emoji: str) -> Message | None:
    check_emoji(emoji)
    message = t.message
    if message.deleted:
        raise MessageNotFoundError(f"message {message.id} was unsent")
    rows = cast(list[tuple[str, str]], await Reaction.filter(message_id=message.id)
                .using_db(t.conn).values_list("user_id", "emoji"))
    if (user_id, emoji) in rows:
        return None
    if emoji not in {e for _, e in rows} and len({e for _, e in rows}) >= MAX_EMOJIS_PER_MESSAGE:
        raise InvalidParameterError(f"a message takes at most {MAX_EMOJIS_PER_MESSAGE} emojis")
    if sum(1 for u, _ in rows if u == user_id) >= MAX_REACTIONS_PER_USER:
        raise InvalidParameterError(
            f"at most {MAX_REACTIONS_PER_USER} reactions per user on a message")
    _ = await Reaction.create(message_id=message.id, thread_id=t.thread.id, user_id=user_id,
                              emoji=emoji, using_db=t.conn)
    return await append_action(t.conn, t.thread.id, user_id, "message_reaction", {
        "message_id": message.id, "user_id": user_id, "reaction": emoji, "action": "add"})


async def remove_reaction(t: Target, user_id: str, emoji: str) -> Message | None:
    check_emoji(emoji)
    removed = await Reaction.filter(message_id=t.message.id, user_id=user_id,
                                    emoji=emoji).using_db(t.conn).delete()
    if not removed:
        return None
    return await append_action(t.conn, t.thread.id, user_id, "message_reaction", {
        "message_id": t.message.id, "user_id": user_id, "reaction": emoji, "action": "remove"})


def _window_passed(sent_at: datetime, window: int, now: datetime) -> bool:
    return window > 0 and now - sent_at > timedelta(seconds=window)


@dataclass(frozen=True)
class Unsent:
    entry: Message | None  # None: it was already unsent
    upload_ids: list[str]  # the files it referenced, to erase unless another message shows them


async def unsend_message(t: Target, user_id: str, window: int) -> Unsent:
    """The sender within `window` seconds (0: any time), owner and admins any time (1004 for
    anyone else, 4004 for the sender after the window). Erases what the message said, wherever
    it is kept: the row, its versions, its reactions, the body and content of its edit entries,
    its file links; the row stays as a tombstone so seqs stay gapless."""
    message, now = t.message, utcnow()
    own = message.sender_id == user_id
    if not own and not is_admin(t.member):
        raise ForbiddenError("only the sender or an admin may unsend this message")
    if message.deleted:
        return Unsent(None, [])
    if not is_admin(t.member) and _window_passed(message.created_at, window, now):
        raise WindowPassedError(f"messages can be unsent for {window} seconds after sending")
    versions = MessageVersion.filter(message_id=message.id).using_db(t.conn)
    edit_seqs = cast(list[int], await versions.filter(entry_seq__not_isnull=True)
                     .values_list("entry_seq", flat=True))
    await versions.delete()
    await Reaction.filter(message_id=message.id).using_db(t.conn).delete()
    if edit_seqs:
        await _erase_edit_entries(t, edit_seqs)
    await Message.filter(id=message.id).using_db(t.conn).update(
        body=None, content=None, attachments=[], mentions=[], deleted=True)
    if message.type == "poll":
        await Poll.filter(message_id=message.id).using_db(t.conn).update(closed=True)
    upload_ids = await unlink_files(t.conn, message.id)
    entry = await append_action(t.conn, t.thread.id, user_id, "message_unsend", {
        "message_id": message.id, "deleted_by": user_id, "deletionTimestamp": epoch_ms(now)})
    return Unsent(entry, upload_ids)


async def _erase_edit_entries(t: Target, seqs: list[int]) -> None:
    """Null the body and content in the message's `message_edit` entries, found by the seqs its
    versions recorded (they stay, as the timeline must stay gapless): a few key lookups, not a
    walk of the thread under its lock, however old the message."""
    if t.conn.capabilities.dialect == "postgres":
        query = ("UPDATE message SET data = data || '{\"body\": null, \"content\": null}'"
                 "::jsonb WHERE thread_id = $1 AND seq = ANY($2::bigint[])")
        params: list[Any] = [t.thread.id, seqs]
    else:
        marks = ", ".join("?" * len(seqs))  # placeholders only; the values are parameters
        query = ("UPDATE message SET data = json_set(data, '$.body', NULL, '$.content', NULL) "  # noqa: S608
                 f"WHERE thread_id = ? AND seq IN ({marks})")
        params = [t.thread.id, *seqs]
    await t.conn.execute_query(query, params)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_edit(message: Message, body: str | None, content: Any,
               max_body_chars: int) -> dict[str, Any] | None:
    """The new body and content under the rules of sending them, for the message's type (4003;
    1001 for neither): the content as contract/content.py normalises it. Its `upload_id`, if
    any, must stay the one sent: an edit never links a new file (send a new message)."""
    if body is None and content is None:
        raise InvalidParameterError("an edit needs a body or content")
    if body is not None:
        if len(body) > max_body_chars:
            raise ContentInvalidError(f"body is longer than {max_body_chars} characters")
        if "\0" in body:
            raise ContentInvalidError("body must not contain NUL characters")
        if message.type == "text" and not body.strip():
            raise ContentInvalidError("a text message needs a non-empty body")
    stored: dict[str, Any] = message.content or {}
    sent, sent_url = stored.get("upload_id"), stored.get("url")
    if (isinstance(content, dict) and sent is not None and content.get("upload_id") == sent
            and content.get("url") == sent_url):
        # The stored content echoed back: sending filled in the upload's url beside its id.
        content = {k: v for k, v in content.items() if k != "url"}
    # Text and poll messages take no content (a poll's is its live state, models/poll.py).
    parsed = parse_content(message.type, content)
    if parsed is None:
        return None
    if _has_nul(parsed):
        raise ContentInvalidError("content must not contain NUL characters")
    if parsed.get("upload_id") not in (None, sent):
        raise ContentInvalidError("content.upload_id: an edit cannot change the file")
    if "upload_id" in parsed and sent_url is not None:
        parsed = {"url": sent_url, **parsed}
    return parsed


async def edit_message(t: Target, user_id: str, body: str | None,
                       content: dict[str, Any] | None, *, window: int,
                       max_body_chars: int) -> Message | None:
    """The sender only (4005), within `window` seconds (4004; 0: any time), never an unsent
    message (4001). Keeps every version: the first edit also stores the original as version 0.
    What is left out (None) stays as it was."""
    message, now = t.message, utcnow()
    if message.deleted:
        raise MessageNotFoundError(f"message {message.id} was unsent")
    if message.sender_id != user_id:
        raise NotYourMessageError("only the sender may edit a message")
    if _window_passed(message.created_at, window, now):
        raise WindowPassedError(f"messages can be edited for {window} seconds after sending")
    content = check_edit(message, body, content, max_body_chars)
    new_body = message.body if body is None else body
    new_content = message.content if content is None else content
    if new_body == message.body and new_content == message.content:
        return None
    versions = MessageVersion.filter(message_id=message.id).using_db(t.conn)
    last = cast(list[int], await versions.order_by("-version").limit(1)
                .values_list("version", flat=True))
    if not last:
        _ = await MessageVersion.create(
            message_id=message.id, version=0, body=message.body, content=message.content,
            created_at=message.created_at, using_db=t.conn)
    entry = await append_action(t.conn, t.thread.id, user_id, "message_edit", {
        "message_id": message.id, "body": new_body, "content": new_content,
        "edited_at": epoch_ms(now)})
    _ = await MessageVersion.create(
        message_id=message.id, version=(last[0] if last else 0) + 1, body=new_body,
        content=new_content, created_at=now, entry_seq=entry.seq, using_db=t.conn)
    await Message.filter(id=message.id).using_db(t.conn).update(
        body=new_body, content=new_content, edited_at=now)
    return entry


@dataclass(frozen=True)
class Version:
    version: int
    body: str | None
    content: dict[str, Any] | None
    at: datetime  # the send time for version 0, else the edit's


async def message_versions(viewer_id: str, thread_id: str, message_id: str) -> list[Version]:
    """Every version of a message the viewer may read (`visible_range`: members and former
    members), oldest first; a message never edited has one, its current state. ThreadNotFound,
    NotAMember, or MessageNotFoundError (4001) for an id outside the viewer's range, a thread
    event, or an unsent message (its versions are erased)."""
    visible = await visible_range(viewer_id, thread_id)
    message = await Message.filter(id=message_id, thread_id=thread_id,
                                   kind=EntryKind.MESSAGE).first()
    if (message is None or message.deleted or message.seq < visible.low
            or (visible.high is not None and message.seq > visible.high)):
        raise MessageNotFoundError(f"message {message_id} not found in thread {thread_id}")
    rows = await MessageVersion.filter(message_id=message_id).order_by("version")
    if not rows:
        return [Version(0, message.body, message.content, message.created_at)]
    return [Version(r.version, r.body, r.content, r.created_at) for r in rows]

"""Sending messages: the one code path behind `POST …/messages` and the `send` op (reading the
timeline is actions/history.py). A user who sends to a room they are not in joins it first
(`actions.membership.join_thread`, 3011 when it is full).

    send_messages(ctx, drafts) -> one SendResult or MqimError per draft

A batch is stored in one atomic write (models/append.py); its thread events are published after
that commit, in seq order. A retry (same sender and client_msg_id, same thread) is answered with
the first result and its event is published again, because the first attempt may have committed
and died before publishing; receivers deduplicate by (thread_id, seq).

Content that names an upload (`content.upload_id`, `attachments[].upload_id`) must name one the
sender may read (4007 otherwise); a batch's uploads are loaded in one query, and the content is
completed from them (url, size, image dimensions, file name), over what the client claimed.
Once stored, each message is linked to its uploads (models/msgfile.py), before its event goes
out, so whoever can read the message can fetch its files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from actions.context import Context
from actions.membership import join_thread
from actions.metrics import DB_APPEND_SECONDS, MESSAGES_PERSISTED
from actions.timeline import entry_event
from actions.uploads import upload_url
from contract.content import MEDIA_TYPES
from contract.errors import (
    AlreadyMemberError,
    MqimError,
    NotAMemberError,
    RateLimitedError,
    UploadNotFoundError,
)
from contract.http import SendResult
from models.append import NotInRoomError, append_messages
from models.message import Appended, AppendResult, Draft, upload_ids_of
from models.msgfile import link_files
from models.upload import Upload, could_be_upload_id, may_read_upload

SendOutcome = SendResult | MqimError


async def send_messages(ctx: Context, drafts: Sequence[Draft]) -> list[SendOutcome]:
    """Store the drafts that are within their sender's rate limit; publish after commit."""
    outcomes: list[SendOutcome | None] = [None] * len(drafts)
    allowed: list[int] = []
    for index, draft in enumerate(drafts):
        try:
            await ctx.limits.hit_send(draft.sender_id)
        except RateLimitedError as exc:
            outcomes[index] = exc
        else:
            allowed.append(index)
    completed = await with_uploads([drafts[i] for i in allowed])
    for index, done in zip(list(allowed), completed, strict=True):
        if isinstance(done, MqimError):
            outcomes[index] = done
            allowed.remove(index)
    ready = [d for d in completed if isinstance(d, Draft)]
    results = await _append_joining_rooms(ctx, ready)
    entries = {r.entry.id: r.entry for r in results if isinstance(r, Appended)}
    await link_files(None, [
        (r.entry, upload_id) for r in results if isinstance(r, Appended) and not r.duplicate
        for upload_id in upload_ids_of(r.entry.content, r.entry.attachments)])
    MESSAGES_PERSISTED.inc(sum(1 for r in results if isinstance(r, Appended) and not r.duplicate))
    await ctx.publish([
        (ctx.topics.thread(e.thread_id), entry_event(e))
        for e in sorted(entries.values(), key=lambda e: (e.thread_id, e.seq))
    ])
    for index, result in zip(allowed, results, strict=True):
        outcomes[index] = result if isinstance(result, MqimError) else SendResult(
            message_id=result.entry.id, seq=result.entry.seq, thread_id=result.entry.thread_id,
            client_msg_id=result.entry.client_msg_id, duplicate=result.duplicate)
    return [o for o in outcomes if o is not None]


async def with_uploads(drafts: Sequence[Draft]) -> list[Draft | MqimError]:
    """Each draft with its uploads' details filled in, or the error that refuses it (4003 for
    a malformed attachment upload_id, 4007 for an upload its sender may not read)."""
    wanted: list[list[str] | MqimError] = []
    for draft in drafts:
        try:
            wanted.append(upload_ids_of(draft.content, draft.attachments))
        except MqimError as exc:
            wanted.append(exc)
    ids = {u for w in wanted if isinstance(w, list) for u in w}
    if not ids:
        return [w if isinstance(w, MqimError) else d for d, w in zip(drafts, wanted, strict=True)]
    # One query; an id no upload can have is simply not found (the ORM would refuse it, and
    # with it the whole batch).
    uploads = {u.id: u for u in await Upload.filter(
        id__in=sorted(u for u in ids if could_be_upload_id(u)))}
    readable: dict[tuple[str, str], bool] = {}
    completed: list[Draft | MqimError] = []
    for draft, names in zip(drafts, wanted, strict=True):
        if isinstance(names, MqimError):
            completed.append(names)
            continue
        missing = None
        for upload_id in names:
            key = (draft.sender_id, upload_id)
            upload = uploads.get(upload_id)
            if key not in readable:  # a query only for someone else's upload
                readable[key] = upload is not None and await may_read_upload(
                    draft.sender_id, upload)
            if not readable[key]:
                missing = upload_id
                break
        if missing is not None:
            completed.append(UploadNotFoundError(f"no upload {missing}"))
        elif names:
            completed.append(_filled(draft, uploads))
        else:
            completed.append(draft)
    return completed


def _filled(draft: Draft, uploads: dict[str, Upload]) -> Draft:
    """The draft with what its uploads tell filled into what the client left out."""
    content = draft.content
    if content is not None and "upload_id" in content and draft.type in MEDIA_TYPES:
        content = _completed(content, uploads[content["upload_id"]], draft.type)
    attachments = [
        _completed(a, uploads[a["upload_id"]], "attachment")
        if "upload_id" in a else a
        for a in draft.attachments]
    return dataclasses.replace(draft, content=content, attachments=attachments)


def _completed(fields: dict[str, Any], upload: Upload, kind: str) -> dict[str, Any]:
    """What the upload says of itself (url, size, dimensions, type) wins over what the client
    claims; a file's display name is the client's if it gave one."""
    known: dict[str, Any] = {"url": upload_url(upload.id), "size": upload.size}
    if kind in ("image", "attachment") and upload.width and upload.height:
        known |= {"width": upload.width, "height": upload.height}
    if kind == "attachment":
        known["content_type"] = upload.content_type
    name = {"name": upload.name} if kind in ("file", "attachment") else {}
    return {**name, **fields, **known}


async def _append_joining_rooms(ctx: Context, drafts: Sequence[Draft]) -> list[AppendResult]:
    """Append; a sender who is not in a room they send to joins it (announced like any join,
    3011 when it is full) and their drafts are appended again, after the others."""
    with DB_APPEND_SECONDS.time():
        results = await append_messages(drafts, max_body_chars=ctx.settings.max_body_chars,
                                        reach=ctx.settings.reach)
    joiners = {(d.sender_id, d.thread_id) for d, r in zip(drafts, results, strict=True)
               if isinstance(r, NotInRoomError)}
    if not joiners:
        return results
    refused: dict[tuple[str, str], MqimError] = {}
    for sender_id, thread_id in sorted(joiners):
        try:
            joined = await join_thread(ctx, sender_id, thread_id)
        except AlreadyMemberError:
            continue  # joined meanwhile (another send of theirs, another device)
        except MqimError as exc:
            refused[(sender_id, thread_id)] = exc
        else:
            if not joined.joined:  # the room wants approval: their request is pending
                refused[(sender_id, thread_id)] = NotAMemberError(thread_id)
    again = [i for i, d in enumerate(drafts) if isinstance(results[i], NotInRoomError)
             and (d.sender_id, d.thread_id) not in refused]
    retried = await append_messages([drafts[i] for i in again],
                                    max_body_chars=ctx.settings.max_body_chars,
                                    reach=ctx.settings.reach)
    for i, result in zip(again, retried, strict=True):
        results[i] = result
    for i, draft in enumerate(drafts):
        if (draft.sender_id, draft.thread_id) in refused and isinstance(results[i], NotInRoomError):
            results[i] = refused[(draft.sender_id, draft.thread_id)]
    return results


async def send_message(ctx: Context, draft: Draft) -> SendResult:
    """One send (HTTP); raises the MqimError that refused it."""
    [outcome] = await send_messages(ctx, [draft])
    if isinstance(outcome, MqimError):
        raise outcome
    return outcome

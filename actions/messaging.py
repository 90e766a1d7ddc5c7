"""Sending messages: the one code path behind `POST …/messages` and the `send` op (reading the
timeline is actions/history.py). A user who sends to a room they are not in joins it first
(`actions.membership.join_thread`, 3011 when it is full).

    send_messages(ctx, drafts) -> one SendResult or MqimError per draft

A batch is stored in one atomic write (models/append.py); its thread events are published after
that commit, in seq order. A retry (same sender and client_msg_id, same thread) is answered with
the first result and its event is published again, because the first attempt may have committed
and died before publishing; receivers deduplicate by (thread_id, seq).
"""

from __future__ import annotations

from collections.abc import Sequence

from actions.context import Context
from actions.membership import join_thread
from actions.metrics import DB_APPEND_SECONDS, MESSAGES_PERSISTED
from actions.timeline import entry_event
from contract.errors import AlreadyMemberError, MqimError, NotAMemberError, RateLimitedError
from contract.http import SendResult
from models.append import NotInRoomError, append_messages
from models.message import Appended, AppendResult, Draft

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
    results = await _append_joining_rooms(ctx, [drafts[i] for i in allowed])
    entries = {r.entry.id: r.entry for r in results if isinstance(r, Appended)}
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


async def _append_joining_rooms(ctx: Context, drafts: Sequence[Draft]) -> list[AppendResult]:
    """Append; a sender who is not in a room they send to joins it (announced like any join,
    3011 when it is full) and their drafts are appended again, after the others."""
    with DB_APPEND_SECONDS.time():
        results = await append_messages(drafts, max_body_chars=ctx.settings.max_body_chars)
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
                                    max_body_chars=ctx.settings.max_body_chars)
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

"""Polls (docs/messages.md): create, vote (the MQTT op `vote` and its route), close, and the
poll as it stands.

A poll is a message of type `poll`, sent through `actions.messaging.send_messages` (so a muted
member, an admins-only thread or a dissolved one refuse it like any send); its Poll rows are
written right AFTER that message commits, because they point at it. In the short window between
the two commits a vote finds no poll (4001), and a crash in it leaves a poll message nobody can
vote on: both are visible in the content (`poll_id`), neither loses data.

Every vote or close that changes something rewrites the poll message's `content` (counts and
`closed`) and appends a `poll_update` entry with its own seq, in one transaction under the
thread's lock (`models.msgtarget.acting_on`), then publishes it after the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from actions.context import Context
from actions.messaging import send_message
from actions.timeline import entry_event
from contract.errors import ForbiddenError, InvalidParameterError, MessageNotFoundError
from contract.msgactions import ActionResult
from contract.polls import PollCreated, PollOptionView, PollView
from models import polls
from models.clock import epoch_ms, utcnow
from models.message import Draft, Message, visible_range
from models.msgtarget import Target, acting_on, append_action
from models.poll import Poll
from models.thread import check_member, is_admin


async def create_poll(ctx: Context, user_id: str, thread_id: str, question: str,
                      options: list[str], *, multiple: bool = False,
                      closes_at: int | None = None) -> PollCreated:
    """Send the poll's message, then store its rows. `closes_at` is epoch ms, in the future."""
    closes = None
    if closes_at is not None:
        if closes_at <= epoch_ms(utcnow()):
            raise InvalidParameterError("closes_at must be in the future")
        closes = datetime.fromtimestamp(closes_at / 1000, UTC)
    # Members only: a send to a room would otherwise join the caller to it.
    await check_member(thread_id, user_id)
    poll_id = polls.new_poll_id()
    sent = await send_message(ctx, Draft(
        sender_id=user_id, thread_id=thread_id, client_msg_id=f"poll-{poll_id}", type="poll",
        body=question,
        content=polls.initial_content(poll_id, question, options, multiple, closes)))
    message = await Message.get(id=sent.message_id)
    await polls.store_poll(poll_id, message, user_id, question, options, multiple, closes)
    return PollCreated(poll_id=poll_id, message_id=sent.message_id, seq=sent.seq,
                       thread_id=thread_id)


async def vote(ctx: Context, user_id: str, thread_id: str, poll_id: str, option_ids: list[int],
               ) -> ActionResult:
    """Replace the caller's votes with `option_ids` (empty: retract). Nothing changed: seq None
    and no entry."""
    async with _acting_on_poll(thread_id, user_id, poll_id) as (target, poll):
        if not await polls.replace_votes(target.conn, poll, user_id, option_ids):
            return ActionResult(thread_id=thread_id, message_id=poll.message_id, seq=None)
        entry = await _update(target, poll, user_id)
    await ctx.publish([(ctx.topics.thread(thread_id), entry_event(entry))])
    return ActionResult(thread_id=thread_id, message_id=poll.message_id, seq=entry.seq)


async def close_poll(ctx: Context, user_id: str, thread_id: str, poll_id: str) -> ActionResult:
    """The creator, the owner or an admin closes the poll (1004 for anyone else); closing a
    closed poll changes nothing (seq None)."""
    async with _acting_on_poll(thread_id, user_id, poll_id) as (target, poll):
        if poll.creator_id != user_id and not is_admin(target.member):
            raise ForbiddenError("only the poll's creator, the owner or an admin may close it")
        if poll.closed:
            return ActionResult(thread_id=thread_id, message_id=poll.message_id, seq=None)
        await polls.close(target.conn, poll)
        entry = await _update(target, poll, user_id)
    await ctx.publish([(ctx.topics.thread(thread_id), entry_event(entry))])
    return ActionResult(thread_id=thread_id, message_id=poll.message_id, seq=entry.seq)


async def get_poll(user_id: str, thread_id: str, poll_id: str) -> PollView:
    """The poll with its voters, for whoever may read its message (4001 otherwise, also once
    the message is unsent)."""
    visible = await visible_range(user_id, thread_id)
    poll = await polls.find_poll(thread_id, poll_id)
    message = await Message.get_or_none(id=poll.message_id) if poll else None
    if (poll is None or message is None or message.deleted or message.seq < visible.low
            or (visible.high is not None and message.seq > visible.high)):
        raise MessageNotFoundError(f"no poll {poll_id} in thread {thread_id}")
    counts = await polls.tally(None, poll_id)
    return PollView(
        poll_id=poll.id, thread_id=thread_id, message_id=poll.message_id,
        creator_id=poll.creator_id, question=poll.question, multiple=poll.multiple,
        closed=polls.is_closed(poll),
        closes_at=epoch_ms(poll.closes_at) if poll.closes_at else None,
        created_at=epoch_ms(poll.created_at),
        options=[PollOptionView(option_id=i, text=t, votes=len(v), voters=v)
                 for i, t, v in counts])


@asynccontextmanager
async def _acting_on_poll(thread_id: str, user_id: str, poll_id: str,
                          ) -> AsyncIterator[tuple[Target, Poll]]:
    """`acting_on` the poll's message: the thread locked, the caller a member who may read it
    (3001/3003/4001, in that order), the poll re-read under the lock."""
    found = await polls.find_poll(thread_id, poll_id)
    if found is None:
        await check_member(thread_id, user_id)
        raise MessageNotFoundError(f"no poll {poll_id} in thread {thread_id}")
    async with acting_on(thread_id, user_id, found.message_id) as target:
        poll = await polls.find_poll(thread_id, poll_id, target.conn)
        if poll is None or target.message.deleted:
            raise MessageNotFoundError(f"no poll {poll_id} in thread {thread_id}")
        yield target, poll


async def _update(target: Target, poll: Poll, actor_id: str) -> Message:
    """Rewrite the poll message's content and append the `poll_update` entry."""
    counts = await polls.tally(target.conn, poll.id)
    await polls.refresh_message(target.conn, target.message, poll, counts)
    return await append_action(target.conn, poll.thread_id, actor_id, "poll_update", {
        "message_id": poll.message_id, "poll_id": poll.id, "closed": polls.is_closed(poll),
        "options": [{"option_id": i, "votes": len(v), "voters": v} for i, t, v in counts]})

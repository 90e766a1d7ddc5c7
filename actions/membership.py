"""Who is in a thread: the one code path behind creating a thread, adding members, removing one
or leaving (listing and showing threads are in actions/threadviews.py).

The rules and the write live in models/membership.py; a change is announced after its commit
by `announce_membership`: the broker first (so an added member may subscribe at once and a
removed one is refused), then the timeline `event` on the thread, then `thread_added` or
`thread_removed` to each user concerned.
"""

from __future__ import annotations

from collections.abc import Sequence

from actions.context import Context
from actions.threadviews import info_of
from actions.timeline import entry_event
from broker.link.publisher import Event
from contract.events import ThreadAddedEvent, ThreadBrief, ThreadRemovedEvent
from contract.membership import MemberRemoved, MembersAdded
from contract.threads import CreatedThread
from models import membership
from models.membership import MembershipChange
from models.thread import get_roster, member_ids, receiver_ids


async def create_thread(
    ctx: Context, creator_id: str, kind: str, user_ids: Sequence[str], name: str | None,
) -> CreatedThread:
    """A new thread with the creator in it, or the direct thread the pair already has."""
    change = await membership.create_thread(creator_id, kind, user_ids, name)
    if change.created:
        await announce_membership(ctx, change, creator_id)
    info = info_of(await get_roster(change.thread.id, creator_id))
    return CreatedThread(**dict(info), created=change.created)


async def add_members(
    ctx: Context, actor_id: str, thread_id: str, user_ids: Sequence[str],
) -> MembersAdded:
    change = await membership.add_members(actor_id, thread_id, user_ids)
    await announce_membership(ctx, change, actor_id)
    return MembersAdded(thread_id=thread_id, added=change.added,
                        seq=change.entry.seq if change.entry else None)


async def remove_member(ctx: Context, actor_id: str, thread_id: str, user_id: str) -> MemberRemoved:
    """Remove `user_id` from a group, or leave it when that is the actor."""
    change = await membership.remove_member(actor_id, thread_id, user_id)
    await announce_membership(ctx, change, actor_id)
    return MemberRemoved(thread_id=thread_id, removed=change.removed,
                         seq=change.entry.seq if change.entry else None)


async def announce_membership(ctx: Context, change: MembershipChange, actor_id: str) -> None:
    """Tell the broker, then the thread, then each added or removed user."""
    thread_id = change.thread.id
    members = await member_ids(thread_id)
    await ctx.tell_broker(ctx.access.membership_changed(thread_id, await receiver_ids(thread_id)),
                          f"membership of {thread_id} changed")
    events: list[Event] = []
    if change.entry is not None:
        events.append((ctx.topics.thread(thread_id), entry_event(change.entry)))
    if change.added:
        summary = ThreadBrief(thread_id=thread_id, type=change.thread.kind.value,
                              name=change.thread.name, participant_ids=members)
        events += [
            (ctx.topics.user(uid), ThreadAddedEvent(type="thread_added", thread_id=thread_id,
                                                    by=actor_id, thread=summary))
            for uid in change.added
        ]
    events += [
        (ctx.topics.user(uid), ThreadRemovedEvent(type="thread_removed", thread_id=thread_id,
                                                  by=actor_id))
        for uid in change.removed
    ]
    await ctx.publish(events)

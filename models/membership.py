"""Creating threads and changing who is in them; every change is a timeline event with a seq.

Rules: a direct thread joins exactly two distinct users and is unique per pair; any member of a
group may add people; only the owner or an admin may remove someone else, and only the owner may
remove an admin; anyone may leave. When the owner leaves, the longest-serving admin (else member)
becomes owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from contract.errors import (
    AlreadyMemberError,
    InvalidParameterError,
    NotAdminError,
    NotOwnerError,
)
from contract.membership import MemberLeftLog, MemberRemovedLog, MembersJoinedLog
from models.block import check_not_blocked
from models.ids import new_thread_id
from models.message import Message, append_event
from models.thread import Member, Role, Thread, ThreadKind, get_membership, get_thread
from models.user import check_text, check_users_exist

GROUP_NAME_MAX = 100
GROUP_SIZE_MAX = 5000


@dataclass(frozen=True)
class MembershipChange:
    """What a membership operation did, for the use case to announce after commit."""

    thread: Thread
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    entry: Message | None = None
    created: bool = False


async def create_thread(
    creator_id: str, kind: str, user_ids: Sequence[str], name: str | None = None
) -> MembershipChange:
    """Create a thread with the creator in it; a direct thread is returned if it already exists."""
    if kind not in (ThreadKind.DIRECT, ThreadKind.GROUP):
        raise InvalidParameterError("type must be 'direct' or 'group'")
    others = [u for u in dict.fromkeys(user_ids) if u != creator_id]
    if name is not None and (not name.strip() or len(name) > GROUP_NAME_MAX):
        raise InvalidParameterError(f"name must be 1 to {GROUP_NAME_MAX} characters")
    if name is not None:
        check_text(name, "name")
    if kind == ThreadKind.DIRECT:
        if len(others) != 1:
            raise InvalidParameterError("a direct thread needs exactly one other user")
        return await _create_direct(creator_id, others[0])
    if len(others) + 1 > GROUP_SIZE_MAX:
        raise InvalidParameterError(f"a group holds at most {GROUP_SIZE_MAX} members")
    await check_users_exist(others)
    async with in_transaction() as conn:
        thread = await Thread.create(
            id=new_thread_id(), kind=ThreadKind.GROUP, name=name, owner_id=creator_id,
            using_db=conn,
        )
        await Member.bulk_create(
            [Member(thread=thread, user_id=creator_id, role=Role.OWNER)]
            + [Member(thread=thread, user_id=uid) for uid in others],
            using_db=conn,
        )
        entry = await _log(conn, thread.id, creator_id,
                           MembersJoinedLog(added_participants=[creator_id, *others]),
                           f"{creator_id} created the group")
    return MembershipChange(thread, added=[creator_id, *others], entry=entry, created=True)


async def _create_direct(creator_id: str, other_id: str) -> MembershipChange:
    await check_users_exist([other_id])
    # Either user blocked the other: no direct thread (an existing one stays, and refuses
    # messages while the block lasts; see models.message).
    await check_not_blocked(creator_id, other_id)
    key = ":".join(sorted((creator_id, other_id)))
    existing = await Thread.get_or_none(direct_key=key)
    if existing is not None:
        return MembershipChange(existing)
    try:
        async with in_transaction() as conn:
            thread = await Thread.create(
                id=new_thread_id(), kind=ThreadKind.DIRECT, direct_key=key, using_db=conn
            )
            await Member.bulk_create(
                [Member(thread=thread, user_id=uid) for uid in (creator_id, other_id)],
                using_db=conn,
            )
    except IntegrityError:  # the other user created it at the same moment
        return MembershipChange(await Thread.get(direct_key=key))
    return MembershipChange(thread, added=[creator_id, other_id], created=True)


async def add_members(actor_id: str, thread_id: str, user_ids: Sequence[str]) -> MembershipChange:
    """Add users to a group the actor belongs to; AlreadyMemberError if any is in it already."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        raise InvalidParameterError("user_ids must name at least one user")
    await check_users_exist(wanted)
    async with in_transaction() as conn:
        _ = await get_membership(thread_id, actor_id, conn)
        thread = await get_thread(thread_id, conn)
        if thread.kind == ThreadKind.DIRECT:
            raise InvalidParameterError("members of a direct thread cannot change")
        present = set(cast(list[str], await Member.filter(thread_id=thread_id, user_id__in=wanted)
                           .using_db(conn).values_list("user_id", flat=True)))
        if present:
            raise AlreadyMemberError(f"already members: {', '.join(sorted(present))}")
        size = await Member.filter(thread_id=thread_id).using_db(conn).count()
        if size + len(wanted) > GROUP_SIZE_MAX:
            raise InvalidParameterError(f"a group holds at most {GROUP_SIZE_MAX} members")
        await Member.bulk_create(
            [Member(thread_id=thread_id, user_id=uid) for uid in wanted], using_db=conn
        )
        entry = await _log(conn, thread_id, actor_id, MembersJoinedLog(added_participants=wanted),
                           f"{actor_id} added {', '.join(wanted)}")
    return MembershipChange(thread, added=wanted, entry=entry)


async def remove_member(actor_id: str, thread_id: str, user_id: str) -> MembershipChange:
    """Remove `user_id` (or leave, when actor and user are the same)."""
    async with in_transaction() as conn:
        # The thread row first, as models.append does (it updates members' read_seq while
        # holding it): deleting the member row first deadlocks against a send.
        await Thread.filter(id=thread_id).using_db(conn).select_for_update().first()
        actor = await get_membership(thread_id, actor_id, conn)
        thread = await get_thread(thread_id, conn)
        if thread.kind == ThreadKind.DIRECT:
            raise InvalidParameterError("members of a direct thread cannot change")
        target = actor if user_id == actor_id else await get_membership(thread_id, user_id, conn)
        if target is not actor:
            if actor.role == Role.MEMBER:
                raise NotAdminError("only the owner or an admin may remove members")
            if target.role != Role.MEMBER and actor.role != Role.OWNER:
                raise NotOwnerError("only the owner may remove an admin or the owner")
        await target.delete(using_db=conn)
        if target.role == Role.OWNER:
            await _hand_over_ownership(thread, conn)
        if target is actor:
            entry = await _log(conn, thread_id, actor_id,
                               MemberLeftLog(left_participant_fbid=user_id),
                               f"{user_id} left the group")
        else:
            entry = await _log(conn, thread_id, actor_id,
                               MemberRemovedLog(removed_participant=user_id),
                               f"{actor_id} removed {user_id}")
    return MembershipChange(thread, removed=[user_id], entry=entry)


async def _log(
    conn: BaseDBAsyncClient, thread_id: str, actor_id: str,
    data: MembersJoinedLog | MemberLeftLog | MemberRemovedLog, body: str,
) -> Message:
    return await append_event(conn, thread_id, actor_id, data.log_type, data.model_dump(), body)


async def _hand_over_ownership(thread: Thread, conn: BaseDBAsyncClient) -> None:
    remaining = Member.filter(thread_id=thread.id).using_db(conn).order_by("id")
    successor = await remaining.filter(role=Role.ADMIN).first() or await remaining.first()
    thread.owner_id = successor.user_id if successor else None
    await thread.save(update_fields=["owner_id"], using_db=conn)
    if successor is not None:
        successor.role = Role.OWNER
        await successor.save(update_fields=["role"], using_db=conn)

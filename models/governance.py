"""Governing a thread: its looks and settings, dissolving or deleting it, admins, the owner,
mutes and nicknames (docs/design.md section 8; announcements are in models/announcements_q.py).

Every change runs in one transaction that locks the thread first (`governing`), checks the
actor, writes, and appends one timeline entry per change with `append_event`; the use case in
actions/governance.py publishes those entries after the commit. A change that changes nothing
writes nothing. A dissolved thread refuses every change here (3002).

The pure rules (what a look, a setting, a nickname or a mute's end may be) are in
models/govrules.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from contract import governance as logs
from contract.errors import (
    CannotActOnOwnerError,
    InvalidParameterError,
    NotAdminError,
    TargetsNotMembersError,
)
from contract.governance import GovernanceLog
from models.clock import utcnow
from models.govrules import (
    LOOKS,
    check_look,
    check_nickname,
    check_settings,
    mute_active,
    mute_until_text,
    parse_mute_until,
)
from models.message import Message, append_event
from models.thread import (
    Member,
    Role,
    Thread,
    ThreadKind,
    ThreadStatus,
    Visibility,
    get_membership,
    is_admin,
    lock_thread,
    require_active,
    require_admin,
    require_owner,
)
from models.user import check_id_ref

# The transaction every change runs in.


@dataclass(frozen=True)
class Governed:
    """Inside a change: the connection, the locked thread, and the actor's membership."""

    conn: BaseDBAsyncClient
    thread: Thread
    actor: Member

    async def log(self, data: GovernanceLog, body: str) -> Message:
        return await append_event(self.conn, self.thread.id, self.actor.user_id, data.log_type,
                                  data.log_data(), body)

    async def targets(self, user_ids: Sequence[str]) -> dict[str, Member]:
        """The current members among `user_ids`; TargetsNotMembersError names the others."""
        wanted = [check_id_ref(u) for u in dict.fromkeys(user_ids)]
        found = {m.user_id: m for m in await Member.filter(
            thread_id=self.thread.id, user_id__in=wanted).using_db(self.conn)}
        missing = [u for u in wanted if u not in found]
        if missing:
            raise TargetsNotMembersError(self.thread.id, missing)
        return {u: found[u] for u in wanted}  # in the order named

    def require_group(self, what: str) -> None:
        if self.thread.kind == ThreadKind.DIRECT:
            raise InvalidParameterError(f"a direct thread has no {what}")


@asynccontextmanager
async def governing(thread_id: str, actor_id: str) -> AsyncIterator[Governed]:
    """Lock the thread, then find the actor's membership (3001, 3003), refuse a dissolved
    thread (3002): the start of every governance change."""
    async with in_transaction() as conn:
        thread = await lock_thread(conn, thread_id)
        actor = await get_membership(thread_id, actor_id, conn)
        require_active(thread)
        yield Governed(conn, thread, actor)


@dataclass(frozen=True)
class Change:
    """What a change wrote, for the use case to publish after commit."""

    thread: Thread
    entries: list[Message] = field(default_factory=list)


# Looks and settings.

_LOOK_LOGS: dict[str, type[GovernanceLog]] = {
    "name": logs.ThreadNameLog, "image_url": logs.ThreadIconLog, "color": logs.ThreadColorLog,
    "emoji": logs.ThreadEmojiLog, "description": logs.ThreadDescriptionLog,
}


async def update_thread(actor_id: str, thread_id: str, looks: Mapping[str, Any],
                        settings: Mapping[str, Any] | None) -> Change:
    """PATCH /api/threads/{id}: one entry per changed look, one for all changed settings."""
    new_looks = {name: check_look(name, value) for name, value in looks.items()}
    new_settings = check_settings(settings or {})
    async with governing(thread_id, actor_id) as g:
        thread = g.thread
        if thread.kind == ThreadKind.DIRECT:
            if settings is not None:
                raise InvalidParameterError("a direct thread has no settings")
        else:
            require_admin(g.actor)
        if thread.kind == ThreadKind.ROOM:
            if "name" in new_looks and new_looks["name"] is None:
                raise InvalidParameterError("a room must keep a name")
            if new_settings.get("visibility", Visibility.PUBLIC) != Visibility.PUBLIC:
                raise InvalidParameterError("a room is always public")
        changed = [n for n in LOOKS if n in new_looks and getattr(thread, n) != new_looks[n]]
        changed_settings = {k: v for k, v in new_settings.items() if getattr(thread, k) != v}
        for name in changed:
            setattr(thread, name, new_looks[name])
        for key, value in changed_settings.items():
            setattr(thread, key, value)
        if not changed and not changed_settings:
            return Change(thread)
        await thread.save(update_fields=[*changed, *changed_settings], using_db=g.conn)
        entries = [await g.log(_LOOK_LOGS[n].model_validate({n: new_looks[n]}),
                               f"{actor_id} set the {n.replace('_', ' ')}") for n in changed]
        if changed_settings:
            entries.append(await g.log(logs.ThreadSettingsLog.model_validate(changed_settings),
                                       f"{actor_id} changed the settings"))
    return Change(thread, entries)


@dataclass(frozen=True)
class Ending:
    """A dissolved group or room (with its entry), or a deleted direct thread (no entry)."""

    thread: Thread
    member_ids: list[str]  # who was in it
    entry: Message | None


async def end_thread(actor_id: str, thread_id: str) -> Ending:
    """Dissolve a group or room (owner only), or delete a direct thread and its history."""
    async with governing(thread_id, actor_id) as g:
        ids = cast(list[str], await Member.filter(thread_id=thread_id).using_db(g.conn)
                   .order_by("id").values_list("user_id", flat=True))
        if g.thread.kind == ThreadKind.DIRECT:
            # Its entries, members and everything else of it go with the row (ON DELETE CASCADE).
            await g.thread.delete(using_db=g.conn)
            return Ending(g.thread, ids, None)
        require_owner(g.actor)
        g.thread.status = ThreadStatus.DISSOLVED
        g.thread.dissolved_at = utcnow()
        await g.thread.save(update_fields=["status", "dissolved_at"], using_db=g.conn)
        entry = await g.log(logs.ThreadDissolvedLog(), f"{actor_id} dissolved the group")
    return Ending(g.thread, ids, entry)


# Admins and the owner.


@dataclass(frozen=True)
class AdminChange:
    added: list[str]
    removed: list[str]
    admin_ids: list[str]
    entry: Message | None


async def _admin_ids(g: Governed) -> list[str]:
    return cast(list[str], await Member.filter(thread_id=g.thread.id, role=Role.ADMIN)
                .using_db(g.conn).order_by("id").values_list("user_id", flat=True))


async def add_admins(actor_id: str, thread_id: str, user_ids: Sequence[str]) -> AdminChange:
    """Appoint members as admins (owner only); those already admins are skipped."""
    async with governing(thread_id, actor_id) as g:
        g.require_group("admins")
        require_owner(g.actor)
        targets = await g.targets(user_ids)  # none: nothing to do
        if any(m.role == Role.OWNER for m in targets.values()):
            raise CannotActOnOwnerError("the owner is not appointed an admin")
        added = [uid for uid, m in targets.items() if m.role == Role.MEMBER]
        entry = None
        if added:
            await Member.filter(thread_id=thread_id, user_id__in=added).using_db(g.conn).update(
                role=Role.ADMIN)
            entry = await g.log(logs.AdminsAddedLog(added=added),
                                f"{actor_id} made {', '.join(added)} "
                                + ("an admin" if len(added) == 1 else "admins"))
        return AdminChange(added, [], await _admin_ids(g), entry)


async def remove_admin(actor_id: str, thread_id: str, user_id: str) -> AdminChange:
    """Dismiss an admin (owner only): they stay a member."""
    async with governing(thread_id, actor_id) as g:
        g.require_group("admins")
        require_owner(g.actor)
        target = (await g.targets([user_id]))[user_id]
        if target.role == Role.OWNER:
            raise CannotActOnOwnerError("the owner cannot be dismissed; hand over ownership")
        if target.role != Role.ADMIN:
            raise InvalidParameterError(f"{user_id} is not an admin")
        target.role = Role.MEMBER
        await target.save(update_fields=["role"], using_db=g.conn)
        entry = await g.log(logs.AdminsRemovedLog(removed=[user_id]),
                            f"{actor_id} dismissed {user_id} as admin")
        return AdminChange([], [user_id], await _admin_ids(g), entry)


async def transfer_owner(actor_id: str, thread_id: str, user_id: str) -> Change:
    """Hand a group or room over to another member; the old owner becomes an admin, and the
    new owner's mute, if any, ends (nobody mutes the owner)."""
    async with governing(thread_id, actor_id) as g:
        g.require_group("owner")
        require_owner(g.actor)
        if user_id == actor_id:
            raise InvalidParameterError("you are the owner already")
        target = (await g.targets([user_id]))[user_id]
        g.actor.role = Role.ADMIN
        await g.actor.save(update_fields=["role"], using_db=g.conn)
        target.role, target.muted_until = Role.OWNER, None
        await target.save(update_fields=["role", "muted_until"], using_db=g.conn)
        g.thread.owner_id = user_id
        await g.thread.save(update_fields=["owner_id"], using_db=g.conn)
        entry = await g.log(logs.OwnerLog.model_validate({"from": actor_id, "to": user_id}),
                            f"{actor_id} made {user_id} the owner")
    return Change(g.thread, [entry])


# Mutes and nicknames.


def _check_may_mute(actor: Member, target: Member) -> None:
    if target.user_id == actor.user_id:
        raise InvalidParameterError("you cannot mute or unmute yourself")
    if target.role == Role.OWNER:
        raise CannotActOnOwnerError("nobody mutes the owner")
    if target.role == Role.ADMIN and actor.role != Role.OWNER:
        raise CannotActOnOwnerError("only the owner mutes or unmutes an admin")


async def mute(actor_id: str, thread_id: str, user_ids: Sequence[str], until: str | None,
               ) -> tuple[Change, list[tuple[str, datetime]]]:
    """Mute members until `until` (None: until unmuted), an entry per user whose mute changed."""
    end = parse_mute_until(until, utcnow())
    async with governing(thread_id, actor_id) as g:
        g.require_group("mutes")
        require_admin(g.actor)
        targets = await g.targets(user_ids)
        for target in targets.values():
            _check_may_mute(g.actor, target)
        changed = [uid for uid, m in targets.items() if m.muted_until != end]
        if changed:
            await Member.filter(thread_id=thread_id, user_id__in=changed).using_db(g.conn).update(
                muted_until=end)
        entries = [await g.log(logs.UserMutedLog(user_id=uid, until=mute_until_text(end)),
                               f"{actor_id} muted {uid}") for uid in changed]
    return Change(g.thread, entries), [(uid, end) for uid in targets]


async def unmute(actor_id: str, thread_id: str, user_id: str) -> Change:
    """End a member's mute; no entry when they were not muted (an ended mute is cleared)."""
    async with governing(thread_id, actor_id) as g:
        g.require_group("mutes")
        require_admin(g.actor)
        target = (await g.targets([user_id]))[user_id]
        _check_may_mute(g.actor, target)
        if target.muted_until is None:
            return Change(g.thread)
        was_active = mute_active(target, utcnow())
        target.muted_until = None
        await target.save(update_fields=["muted_until"], using_db=g.conn)
        if not was_active:
            return Change(g.thread)
        entry = await g.log(logs.UserUnmutedLog(user_id=user_id), f"{actor_id} unmuted {user_id}")
    return Change(g.thread, [entry])


async def set_nickname(actor_id: str, thread_id: str, user_id: str, nickname: str | None,
                       ) -> Change:
    """A member's per-thread nickname: in a direct thread either member sets either's; in a
    group or room the member themself or an admin."""
    nickname = check_nickname(nickname)
    async with governing(thread_id, actor_id) as g:
        if g.thread.kind != ThreadKind.DIRECT and user_id != actor_id and not is_admin(g.actor):
            raise NotAdminError("only the member themself or an admin sets a nickname")
        target = g.actor if user_id == actor_id else (await g.targets([user_id]))[user_id]
        if target.nickname == nickname:
            return Change(g.thread)
        target.nickname = nickname
        await target.save(update_fields=["nickname"], using_db=g.conn)
        entry = await g.log(logs.NicknameLog(participant_id=user_id, nickname=nickname),
                            f"{actor_id} set the nickname of {user_id}")
    return Change(g.thread, [entry])

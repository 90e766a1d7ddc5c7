"""Friend groups: the one code path behind the `/api/friends/groups` routes. A group is private
to its owner, so nothing is published. The rules and writes are in models/friendgroup.py; this
module shapes what they return for the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

from actions.profiles import user_profile
from contract.http import UserProfile
from contract.social import (
    FriendGroupDeleted,
    FriendGroupDetail,
    FriendGroupInfo,
    FriendGroupMemberRemoved,
    FriendGroupMembersAdded,
    FriendGroupRef,
)
from models import friendgroup
from models.bots import bot_ids
from models.friendgroup import FriendGroup, GroupRef
from models.user import User


async def _profiles(users: Sequence[User]) -> list[UserProfile]:
    bots = await bot_ids(u.id for u in users)
    return [user_profile(u, is_bot=u.id in bots) for u in users]


def group_ref(ref: GroupRef) -> FriendGroupRef:
    return FriendGroupRef(id=ref.id, name=ref.name)


def _info(group: FriendGroup, member_count: int) -> FriendGroupInfo:
    return FriendGroupInfo(id=group.id, name=group.name, member_count=member_count,
                           created_at=group.created_at.isoformat())


async def groups_of(owner_id: str) -> list[FriendGroupInfo]:
    """The owner's groups, oldest first, with their member counts."""
    return [_info(g.group, g.member_count) for g in await friendgroup.list_groups(owner_id)]


async def create_group(owner_id: str, name: str) -> FriendGroupInfo:
    return _info(await friendgroup.create_group(owner_id, name), 0)


async def rename_group(owner_id: str, group_id: int, name: str) -> FriendGroupInfo:
    renamed = await friendgroup.rename_group(owner_id, group_id, name)
    return _info(renamed.group, renamed.member_count)


async def delete_group(owner_id: str, group_id: int) -> FriendGroupDeleted:
    await friendgroup.delete_group(owner_id, group_id)
    return FriendGroupDeleted(id=group_id)


async def group_detail(owner_id: str, group_id: int) -> FriendGroupDetail:
    group, members = await friendgroup.get_group(owner_id, group_id)
    return FriendGroupDetail(id=group.id, name=group.name, member_count=len(members),
                             created_at=group.created_at.isoformat(),
                             members=await _profiles(members))


async def members_of(owner_id: str, group_id: int) -> list[UserProfile]:
    """The group's members, in the order they were added."""
    return await _profiles(await friendgroup.list_group_members(owner_id, group_id))


async def add_members(
    owner_id: str, group_id: int, user_ids: Sequence[str]
) -> FriendGroupMembersAdded:
    added = await friendgroup.add_group_members(owner_id, group_id, user_ids)
    return FriendGroupMembersAdded(group_id=group_id, added=added)


async def remove_member(owner_id: str, group_id: int, user_id: str) -> FriendGroupMemberRemoved:
    await friendgroup.remove_group_member(owner_id, group_id, user_id)
    return FriendGroupMemberRemoved(group_id=group_id, removed=[user_id])

"""Blocks: the table, and the block as a rule that other features obey.

While `user` blocks `blocked`, friend requests, new direct threads and messages in their direct
thread are refused, either way (`check_not_blocked`, `blocks_among`, `blocked_error`); group
threads are unaffected. Creating a block also ends the friendship and rejects the pending
requests between the two: that use case spans three tables and is composed in
actions/friends.py. Nobody is told of a block.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from contract.errors import BlockedError, NotFoundError
from models.user import User, check_id_ref


class Block(Model):
    """`user` blocked `blocked`: no messages in direct threads, no requests, no presence."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="blocks", on_delete=fields.CASCADE
    )
    blocked: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: str
    blocked_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user_block"
        unique_together = (("user", "blocked"),)


async def blocks_among(
    pairs: Iterable[tuple[str, str]], conn: BaseDBAsyncClient | None = None
) -> set[tuple[str, str]]:
    """The (blocker, blocked) pairs among the given pairs of users, in either direction, in one
    query."""
    wanted = {p for a, b in pairs for p in ((a, b), (b, a))}
    if not wanted:
        return set()
    users = sorted({u for pair in wanted for u in pair})
    rows = await Block.filter(user_id__in=users, blocked_id__in=users).using_db(conn).values_list(
        "user_id", "blocked_id")
    return {(str(a), str(b)) for a, b in rows} & wanted


def blocked_error(actor_id: str, other_id: str, blocker_id: str) -> BlockedError:
    """The refusal `actor_id` gets for an action towards `other_id` when `blocker_id` blocked."""
    if blocker_id == actor_id:
        return BlockedError(f"you blocked {other_id}; unblock them first")
    return BlockedError(f"{other_id} has blocked you")


async def check_not_blocked(
    actor_id: str, other_id: str, conn: BaseDBAsyncClient | None = None
) -> None:
    """Raise BlockedError if either user blocked the other."""
    found = await blocks_among([(actor_id, other_id)], conn)
    if found:
        blocker = actor_id if (actor_id, other_id) in found else other_id
        raise blocked_error(actor_id, other_id, blocker)


async def has_blocked(user_id: str, other_id: str) -> bool:
    return await Block.filter(user_id=user_id, blocked_id=other_id).exists()


async def find_block(conn: BaseDBAsyncClient, user_id: str, blocked_id: str) -> Block | None:
    """The user's block of `blocked_id`, with `blocked` loaded, if any."""
    return await Block.filter(user_id=user_id, blocked_id=blocked_id).using_db(
        conn).select_related("blocked").first()


async def do_block(conn: BaseDBAsyncClient, user: User, blocked: User) -> Block:
    """Store the block (the caller holds both users' locks and found none)."""
    return await Block.create(user=user, blocked=blocked, using_db=conn)


async def unblock_user(user_id: str, target_id: str) -> None:
    """Lift a block (a friendship it ended stays ended); NotFoundError if there is none."""
    check_id_ref(target_id)
    if not await Block.filter(user_id=user_id, blocked_id=target_id).delete():
        raise NotFoundError(f"you have not blocked {target_id}")


async def list_blocks(user_id: str) -> list[Block]:
    """The users the user blocked (`blocked` loaded), newest first."""
    return list(await Block.filter(user_id=user_id).select_related("blocked").order_by("-id"))

"""Finding users and looking at one: search by name, email or id, and a user as a viewer sees
them (friend or not, blocked or not, in which of the viewer's groups).

Search matches a live user's name (case-insensitive substring), or exactly their email or id;
the exact matches come first, then the name matches by name. A soft-deleted user is found only by
exact id (the use cases show them as "Deleted user"). The searcher is never in their own results.
`%`, `_` and `\\` in the query match themselves: the ORM's `icontains` escapes them (with
`ESCAPE '\\'`, on SQLite and PostgreSQL alike). This module reads only, and returns rows: the
use cases shape them for the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.functions import Lower

from contract.errors import InvalidParameterError, UserNotFoundError
from models.block import has_blocked
from models.friendgroup import GroupRef, groups_by_member
from models.friendship import friend_ids_among
from models.user import User, check_id_ref, has_bad_chars

QUERY_MAX = 100
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100
PAGE_MAX = 10_000  # keeps OFFSET far below any database limit


def check_search(query: str, page: int, page_size: int) -> str:
    # A NUL ends the pattern early for SQLite's LIKE, so `q=%00` matched every user; no name,
    # email or id holds a control character anyway.
    if has_bad_chars(query):
        raise InvalidParameterError("q must not contain control characters")
    query = query.strip()
    if not query:
        raise InvalidParameterError("q (a name, email or user id to search for) is required")
    if len(query) > QUERY_MAX:
        raise InvalidParameterError(f"q must be at most {QUERY_MAX} characters")
    if not 1 <= page <= PAGE_MAX:
        raise InvalidParameterError(f"page must be 1 to {PAGE_MAX}")
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise InvalidParameterError(f"page_size must be 1 to {PAGE_SIZE_MAX}")
    return query


@dataclass(frozen=True)
class SearchPage:
    users: list[User]  # this page's matches, in order
    friend_ids: set[str]  # which of them are the viewer's friends
    page: int
    page_size: int
    total: int  # matches on every page


@dataclass(frozen=True)
class ProfileLook:
    """A user as one viewer sees them."""

    user: User  # soft-deleted too
    is_friend: bool
    blocked: bool  # the viewer blocked them (never whether they blocked the viewer)
    groups: list[GroupRef]  # the viewer's friend groups they are in, oldest first


async def search_users(
    viewer_id: str, query: str, *, page: int = 1, page_size: int = PAGE_SIZE_DEFAULT
) -> SearchPage:
    """One page of matches, and which of them are friends of the viewer."""
    query = check_search(query, page, page_size)
    exact_rows = await User.filter(
        Q(id=query) | Q(email=query.lower(), deleted_at=None)
    ).exclude(id=viewer_id)
    exact = sorted(exact_rows, key=lambda u: u.id != query)  # the id match first
    by_name = User.filter(name__icontains=query, deleted_at=None).exclude(
        id__in=[viewer_id, *(u.id for u in exact)])
    total = len(exact) + await by_name.count()
    start = (page - 1) * page_size
    found = exact[start:start + page_size]
    if len(found) < page_size:
        found += await (by_name.annotate(lower_name=Lower("name")).order_by("lower_name", "id")
                        .offset(max(0, start - len(exact))).limit(page_size - len(found)))
    friends = await friend_ids_among(viewer_id, [u.id for u in found])
    return SearchPage(found, friends, page, page_size, total)


async def get_profile(viewer_id: str, user_id: str) -> ProfileLook:
    """A user (soft-deleted ones too) as the viewer sees them. UserNotFoundError if there never
    was such a user."""
    user = await User.get_or_none(id=check_id_ref(user_id))
    if user is None:
        raise UserNotFoundError(f"user {user_id} not found")
    is_friend = bool(await friend_ids_among(viewer_id, [user_id]))
    groups = await groups_by_member(viewer_id, [user_id]) if is_friend else {}
    return ProfileLook(user, is_friend, await has_blocked(viewer_id, user_id),
                       groups.get(user_id, []))

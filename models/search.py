"""Finding users and looking at one: search by name, email or id, and a profile as the viewer
sees it (friend or not, blocked or not, in which of the viewer's groups).

Search matches a live user's name (case-insensitive substring), or exactly their email or id;
the exact matches come first, then the name matches by name. A soft-deleted user is found only by
exact id, and shows as "Deleted user" (`models.friend.user_summary`). The
searcher is never in their own results. `%`, `_` and `\\` in the query match themselves: the
ORM's `icontains` escapes them (with `ESCAPE '\\'`, on SQLite and PostgreSQL alike). This module
reads only; it changes nothing.
"""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Lower

from contract.errors import InvalidParameterError, UserNotFoundError
from models.friend import friend_ids_among, has_blocked, user_summary
from models.friendgroup import groups_by_member
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


async def search_users(
    viewer_id: str, query: str, *, page: int = 1, page_size: int = PAGE_SIZE_DEFAULT
) -> dict[str, Any]:
    """One page of matches: `{items, page, page_size, total}`; each item is the user's summary
    with `is_friend`."""
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
    items = [{**user_summary(u), "is_friend": u.id in friends} for u in found]
    return {"items": items, "page": page, "page_size": page_size, "total": total}


async def get_profile(viewer_id: str, user_id: str) -> dict[str, Any]:
    """A user (soft-deleted ones too, as "Deleted user") as the viewer sees them: the summary,
    `is_friend`, `blocked` (the viewer blocked them) and `friend_groups` (the viewer's
    groups they are in). UserNotFoundError if there never was such a user."""
    user = await User.get_or_none(id=check_id_ref(user_id))
    if user is None:
        raise UserNotFoundError(f"user {user_id} not found")
    is_friend = bool(await friend_ids_among(viewer_id, [user_id]))
    groups = await groups_by_member(viewer_id, [user_id]) if is_friend else {}
    return {
        **user_summary(user),
        "is_friend": is_friend,
        "blocked": await has_blocked(viewer_id, user_id),
        "friend_groups": groups.get(user_id, []),
    }

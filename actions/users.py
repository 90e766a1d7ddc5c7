"""Users as others see them: search, and one user as the caller sees them (friend or not,
blocked or not, in which of the caller's friend groups). Reads only.
"""

from __future__ import annotations

from actions.profiles import user_profile
from contract.accounts import UserFound, UserPage, UserView
from contract.social import FriendGroupRef
from models.bots import bot_ids, is_bot
from models.search import PAGE_SIZE_DEFAULT, get_profile, search_users


async def search(viewer_id: str, query: str, *, page: int = 1,
                 page_size: int = PAGE_SIZE_DEFAULT) -> UserPage:
    found = await search_users(viewer_id, query, page=page, page_size=page_size)
    bots = await bot_ids(u.id for u in found.users)
    return UserPage(
        items=[UserFound(**dict(user_profile(u, is_bot=u.id in bots)),
                         is_friend=u.id in found.friend_ids)
               for u in found.users],
        page=found.page, page_size=found.page_size, total=found.total,
    )


async def view(viewer_id: str, user_id: str) -> UserView:
    look = await get_profile(viewer_id, user_id)
    return UserView(**dict(user_profile(look.user, is_bot=await is_bot(look.user.id))),
                    is_friend=look.is_friend,
                    blocked=look.blocked,
                    friend_groups=[FriendGroupRef(id=g.id, name=g.name) for g in look.groups])

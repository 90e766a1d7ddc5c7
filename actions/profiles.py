"""Users as the contract shows them: a user row becomes the owner's own view (`UserSelf`: with
email and phone) or what others see (`UserProfile`: neither, and a deleted account as "Deleted
user" with nothing of what it held). Every route and event that shows a user goes through here.
`is_bot` is the caller's to look up (models/bots.py `bot_ids`), in one statement for a whole list:
every caller passes it.
"""

from __future__ import annotations

from datetime import datetime

from contract.http import UserProfile, UserSelf
from models.user import DELETED_NAME, User


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def user_self(user: User, *, is_bot: bool) -> UserSelf:
    return UserSelf(
        id=user.id, name=user.name, email=user.email, phone=user.phone,
        avatar_url=user.avatar_url, bio=user.bio, extra=user.extra,
        email_verified_at=_iso(user.email_verified_at), created_at=user.created_at.isoformat(),
        is_bot=is_bot,
    )


def user_profile(user: User, *, is_bot: bool) -> UserProfile:
    if user.is_deleted:
        return UserProfile(id=user.id, name=DELETED_NAME, avatar_url=None, bio=None, extra=None,
                           created_at=user.created_at.isoformat(), deleted=True, is_bot=is_bot)
    return UserProfile(id=user.id, name=user.name, avatar_url=user.avatar_url, bio=user.bio,
                       extra=user.extra, created_at=user.created_at.isoformat(), deleted=False,
                       is_bot=is_bot)

"""The broker's Directory, answered from the models: token checks and a membership cache.

Thread membership is checked on every delivery, so it is cached per thread; the API calls
`membership_changed` right after a membership change commits, which drops that thread's entry.
A generation counter stops a load that raced with a change from caching the old members.
"""

from __future__ import annotations

from collections import OrderedDict

from models.errors import AuthError
from models.session import is_session_active
from models.thread import member_ids
from models.tokens import decode_access_token

CACHE_THREADS = 50_000


class ModelDirectory:
    def __init__(self, jwt_secret: str) -> None:
        self._secret = jwt_secret
        self._members: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._generation: dict[str, int] = {}

    async def check_credentials(self, username: str, password: str) -> bool:
        try:
            claims = decode_access_token(self._secret, password)
        except AuthError:
            return False
        return claims.user_id == username and await is_session_active(
            claims.session_id, username
        )

    async def is_member(self, user_id: str, thread_id: str) -> bool:
        members = self._members.get(thread_id)
        if members is None:
            generation = self._generation.get(thread_id, 0)
            members = frozenset(await member_ids(thread_id))
            if self._generation.get(thread_id, 0) == generation:
                self._members[thread_id] = members
                if len(self._members) > CACHE_THREADS:
                    self._members.popitem(last=False)
        else:
            self._members.move_to_end(thread_id)
        return user_id in members

    async def membership_changed(self, thread_id: str) -> None:
        self._generation[thread_id] = self._generation.get(thread_id, 0) + 1
        self._members.pop(thread_id, None)

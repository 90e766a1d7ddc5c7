"""The broker's Directory and AccessSync, answered from the models.

Who receives a thread (models.thread.receiver_ids) is checked on every delivery by the embedded
broker, so it is cached per thread; `membership_changed` (called right after a change commits)
drops that thread's entry, and a generation counter stops a load that raced with a change from
caching the old members. Live login sessions are cached the same way for CONNECT (a reconnect
storm would otherwise read the database once per client): every path that ends a session calls
`session_ended` (and a ban, `user_banned`), as Mosquitto's plugin needs too, and that drops the
entry. Where several processes answer for one broker (HTTP auth hooks behind `mqim api`
replicas), build it with `cache=False`: each answer then reads the database.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from broker.acl import ExtraRule
from contract.errors import AuthError
from models.aclrule import list_rules
from models.session import is_session_active
from models.thread import is_receiver, receiver_ids
from models.tokens import decode_access_token

CACHE_THREADS = 50_000
CACHE_SESSIONS = 100_000


async def load_rules() -> list[ExtraRule]:
    return [ExtraRule(r.topic, r.access.value, r.user_id) for r in await list_rules()]


class ModelDirectory:
    def __init__(self, jwt_secret: str, *, cache: bool = True) -> None:
        self._secret = jwt_secret
        self._cache = cache
        self._members: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._rules: list[ExtraRule] | None = None
        self._sessions: OrderedDict[str, str] = OrderedDict()  # live session id -> user id
        self._sessions_generation = 0

    async def check_credentials(self, username: str, password: str) -> bool:
        try:
            claims = decode_access_token(self._secret, password)
        except AuthError:
            return False
        if claims.user_id != username:
            return False
        sid = claims.session_id
        if self._sessions.get(sid) == username:
            self._sessions.move_to_end(sid)
            return True
        # A banned or deleted user has no live session: banning ends them all.
        generation = self._sessions_generation
        active = await is_session_active(sid, username)
        if active and self._cache and generation == self._sessions_generation:
            self._sessions[sid] = username
            if len(self._sessions) > CACHE_SESSIONS:
                self._sessions.popitem(last=False)
        return active

    async def receives(self, user_id: str, thread_id: str) -> bool:
        if not self._cache:
            return await is_receiver(thread_id, user_id)
        members = self._members.get(thread_id)
        if members is None:
            generation = self._generation.get(thread_id, 0)
            members = frozenset(await receiver_ids(thread_id))
            if self._generation.get(thread_id, 0) == generation:
                self._members[thread_id] = members
                if len(self._members) > CACHE_THREADS:
                    self._members.popitem(last=False)
        else:
            self._members.move_to_end(thread_id)
        return user_id in members

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        rules = self._rules if self._cache else None
        if rules is None:
            rules = await load_rules()
            if self._cache:
                self._rules = rules
        return [r for r in rules if r.user_id in (None, user_id)]

    # AccessSync: only invalidation, since every answer comes from the database.

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        self._generation[thread_id] = self._generation.get(thread_id, 0) + 1
        self._members.pop(thread_id, None)

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        # Live connections are the broker's business (EmbeddedAccess kicks them;
        # docs/guarantees.md).
        self._sessions_generation += 1
        self._sessions.pop(session_id, None)

    async def user_banned(self, user_id: str, banned: bool) -> None:
        # Banning ends the user's sessions (each also announced); dropping them here as well
        # costs one scan per ban and does not depend on that.
        self._sessions_generation += 1
        for sid in [sid for sid, user in self._sessions.items() if user == user_id]:
            del self._sessions[sid]

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None:
        self._rules = list(rules)

"""Who may do what on which topic: the pure rule of DESIGN.md section 3, and the directory it asks.

The rule is evaluated the same way for the embedded broker's plugin and for brokers that ask us
over HTTP. It denies by default: anything not granted below is refused.

| topic          | publish         | subscribe / receive        |
|----------------|-----------------|----------------------------|
| im/up/{u}      | u               | service accounts only      |
| im/t/{t}       | service only    | members of t               |
| im/u/{u}       | service only    | u                          |
| anything else  | service only    | service only               |

plus the extra rules admins add (`ExtraRule`), which may only grant access outside the mqim tree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from broker.topics import TopicKind, TopicScheme


class Access(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


@dataclass(frozen=True)
class ExtraRule:
    """An admin-added grant: `access` ("read", "write", "readwrite") on a topic filter in which
    `%u` stands for the user's id, for one user or everyone (`user_id` None)."""

    topic: str
    access: str
    user_id: str | None = None

    def grants(self, username: str, topic: str, access: Access) -> bool:
        if self.user_id is not None and self.user_id != username:
            return False
        wanted = "write" if access == Access.PUBLISH else "read"
        if wanted not in self.access:
            return False
        return filter_covers(self.topic.replace("%u", username), topic)


def filter_covers(rule: str, topic: str) -> bool:
    """True if every topic matched by `topic` (a topic or a subscription filter) is matched by
    the filter `rule`. A `+`/`#` in `topic` is only covered by the same or a wider level."""
    rule_levels, levels = rule.split("/"), topic.split("/")
    for i, level in enumerate(rule_levels):
        if level == "#":
            return not topic.startswith("$") or i > 0
        if i >= len(levels):
            return False
        if level == "+":
            if levels[i] == "#":
                return False
            continue
        if level != levels[i]:
            return False
    return len(levels) == len(rule_levels)


class Directory(Protocol):
    """What the broker needs to know about users, supplied by the composition root.

    The broker never touches the database; implementations may cache, but must reflect a
    membership change by the time the change's events are published.
    """

    async def check_credentials(self, username: str, password: str) -> bool:
        """True if `password` is a live access token of `username`."""
        ...

    async def is_member(self, user_id: str, thread_id: str) -> bool: ...

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        """The extra rules that apply to this user."""
        ...


class AccessSync(Protocol):
    """Told after a change commits, so the broker's access decisions follow at once.

    The embedded broker and HTTP-hook brokers ask the database (through a cache) and only need
    invalidation; Mosquitto's plugin keeps its own copy and is sent the change.
    """

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None: ...

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        """A login session ended (logout, replaced, refresh reuse): refuse its token, kick it."""
        ...

    async def user_banned(self, user_id: str, banned: bool) -> None: ...

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None: ...


async def check_topic_access(
    *,
    username: str,
    topic: str,
    access: Access,
    scheme: TopicScheme,
    directory: Directory,
    service_users: Collection[str],
) -> bool:
    """Whether `username` may `access` `topic`. Wildcard filters are only for service accounts."""
    if username in service_users:
        return True
    parsed = scheme.parse(topic)
    if parsed is None:
        return any(r.grants(username, topic, access) for r in await directory.rules_for(username))
    if access == Access.PUBLISH:
        return parsed.kind == TopicKind.UPLINK and parsed.ident == username
    if parsed.kind == TopicKind.USER:
        return parsed.ident == username
    if parsed.kind == TopicKind.THREAD:
        return await directory.is_member(username, parsed.ident)
    return False

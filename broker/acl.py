"""Who may do what on which topic: the pure rule of DESIGN.md section 3, and the directory it asks.

The rule is evaluated the same way for the embedded broker's plugin and for brokers that ask us
over HTTP. It denies by default: anything not granted below is refused.

| topic          | publish         | subscribe / receive        |
|----------------|-----------------|----------------------------|
| im/up/{u}      | u               | service accounts only      |
| im/t/{t}       | service only    | members of t               |
| im/u/{u}       | service only    | u                          |
| anything else  | service only    | service only               |
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Protocol

from broker.topics import TopicKind, TopicScheme


class Access(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


class Directory(Protocol):
    """What the broker needs to know about users, supplied by the composition root.

    The broker never touches the database; implementations may cache, but must reflect a
    membership change by the time the change's events are published.
    """

    async def check_credentials(self, username: str, password: str) -> bool:
        """True if `password` is a live access token of `username`."""
        ...

    async def is_member(self, user_id: str, thread_id: str) -> bool: ...


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
        return False
    if access == Access.PUBLISH:
        return parsed.kind == TopicKind.UPLINK and parsed.ident == username
    if parsed.kind == TopicKind.USER:
        return parsed.ident == username
    if parsed.kind == TopicKind.THREAD:
        return await directory.is_member(username, parsed.ident)
    return False

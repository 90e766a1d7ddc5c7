"""Who may do what on which topic: the pure rule (docs/design.md section 3), and what it asks.

The rule is evaluated the same way for the embedded broker's plugin and for brokers that ask us
over HTTP. It denies by default: anything not granted below is refused.

| topic          | publish         | subscribe / receive        |
|----------------|-----------------|----------------------------|
| im/up/{u}      | u               | service accounts only      |
| im/t/{t}       | service only    | members of t (not with recv_msg_opt 2, not once dissolved) |
| im/u/{u}       | service only    | u                          |
| anything else  | service only    | service only               |

plus the extra rules admins add (`ExtraRule`), which may only grant access outside the mqim tree:
no rule grants a topic or filter that could match `{prefix}` or anything under it, whatever
`%u` expands to (a rule `%u/#` must not hand the user who registers the id `im` all of `im/#`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from contract.topics import TopicKind, TopicScheme


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

    def grants(self, username: str, topic: str, access: Access, *, prefix: str) -> bool:
        """Whether this rule lets `username` `access` `topic` (a topic or a filter), under the
        mqim tree `prefix`."""
        if self.user_id is not None and self.user_id != username:
            return False
        wanted = "write" if access == Access.PUBLISH else "read"
        if wanted not in self.access:
            return False
        # Judged on what is asked, after `%u` is expanded: checking the rule's text when it was
        # added cannot know which ids will register. A rule that covers `topic` covers all it
        # matches, so refusing every `topic` that touches the tree voids exactly the part of
        # an expanded rule that falls inside it.
        if touches_tree(topic, prefix):
            return False
        return filter_covers(self.topic.replace("%u", username), topic)


def filters_overlap(a: str, b: str) -> bool:
    """True if some topic is matched by both `a` and `b` (each a topic or a filter).

    `+` matches any one level, `#` any rest (also none: `a/#` matches `a`), and a wildcard in
    the first level never matches a `$` topic.
    """
    la, lb = a.split("/"), b.split("/")
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if i == 0 and x is not None and y is not None and "$" in (x[:1], y[:1]):
            if x != y:
                return False
            continue
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and "+" not in (x, y):
            return False
    return True


def touches_tree(topic: str, prefix: str) -> bool:
    """True if the topic or filter could match a topic of the mqim tree: `prefix` itself or
    anything under it (`#`, `+/#`, `+/t/x`, `{prefix}/x` all do)."""
    return filters_overlap(topic, f"{prefix}/#")


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

    async def receives(self, user_id: str, thread_id: str) -> bool:
        """True if the thread's events reach this user: a current member, not with
        recv_msg_opt 2, of a thread that was not dissolved."""
        ...

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        """The extra rules that apply to this user."""
        ...


class AccessSync(Protocol):
    """Told after a change commits, so the broker's access decisions follow at once.

    The embedded broker and HTTP-hook brokers ask the database (through a cache) and only need
    invalidation; Mosquitto's plugin keeps its own copy and is sent the change.
    """

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        """Who receives the thread now (`Directory.receives`), after any change to its members,
        their recv_msg_opt or its status."""
        ...

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
        rules = await directory.rules_for(username)
        return any(r.grants(username, topic, access, prefix=scheme.prefix) for r in rules)
    if access == Access.PUBLISH:
        return parsed.kind == TopicKind.UPLINK and parsed.ident == username
    if parsed.kind == TopicKind.USER:
        return parsed.ident == username
    if parsed.kind == TopicKind.THREAD:
        return await directory.receives(username, parsed.ident)
    return False

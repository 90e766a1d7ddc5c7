"""The topic tree of docs/design.md section 3: the only place topic strings are built or parsed.

    {prefix}/up/{user_id}     uplink commands of one user (the bridge consumes)
    {prefix}/t/{thread_id}    events of one thread (members receive)
    {prefix}/u/{user_id}      personal events of one user (that user receives)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class TopicKind(StrEnum):
    UPLINK = "up"
    THREAD = "t"
    USER = "u"


@dataclass(frozen=True)
class ParsedTopic:
    kind: TopicKind
    ident: str


_FORBIDDEN = frozenset("/+#\0 \t\r\n")


def is_topic_safe(ident: str) -> bool:
    """True if `ident` can be one topic level: no separators, wildcards, whitespace or NUL."""
    return bool(ident) and not ident.startswith("$") and not (set(ident) & _FORBIDDEN)


@dataclass(frozen=True)
class TopicScheme:
    prefix: str = "im"

    def uplink(self, user_id: str) -> str:
        return f"{self.prefix}/up/{user_id}"

    def thread(self, thread_id: str) -> str:
        return f"{self.prefix}/t/{thread_id}"

    def user(self, user_id: str) -> str:
        return f"{self.prefix}/u/{user_id}"

    def uplink_filter(self, share_group: str | None = None) -> str:
        """What the bridge subscribes to: every user's uplink; with `share_group`, as an MQTT
        shared subscription, so the broker splits the uplinks among the bridge workers."""
        plain = f"{self.prefix}/up/+"
        return f"$share/{share_group}/{plain}" if share_group else plain

    def parse(self, topic: str) -> ParsedTopic | None:
        """The kind and id of a concrete topic of ours, or None (wildcards are never ours)."""
        return _parse(self.prefix, topic)


# The embedded broker parses the topic of every delivery it checks, mostly the same few
# thousand thread and user topics: memoised (the result is immutable).
@lru_cache(maxsize=65_536)
def _parse(prefix: str, topic: str) -> ParsedTopic | None:
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    kind, sep, ident = topic[len(head):].partition("/")
    if not sep or not is_topic_safe(ident):
        return None
    try:
        return ParsedTopic(TopicKind(kind), ident)
    except ValueError:
        return None

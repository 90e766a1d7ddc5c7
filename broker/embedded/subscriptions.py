"""amqtt's subscription table, indexed so a broadcast does not scan every filter.

amqtt 0.12.1 keeps `{filter: [(session, qos), ...]}` and, for every message, tests the topic
against every filter in it (the research measured ~180 msg/s with 5,000 filters). mqim's clients
subscribe to exact topics (`im/t/{thread}`, `im/u/{user}`); only admin rules use wildcards. This
dict subclass keeps, as amqtt adds and deletes filters, the set of filters with wildcards, so a
broadcast looks its topic up directly and tests only those.
"""

from __future__ import annotations

from typing import Any


def has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


class SubscriptionTable(dict[str, list[Any]]):
    """A drop-in for amqtt's `Broker._subscriptions` (it only sets, deletes, clears, reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.wildcards: dict[str, None] = {}  # an ordered set

    def __setitem__(self, key: str, value: list[Any]) -> None:
        super().__setitem__(key, value)
        if has_wildcard(key):
            self.wildcards[key] = None

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.wildcards.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        self.wildcards.pop(key, None)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if has_wildcard(key):
            self.wildcards[key] = None
        return super().setdefault(key, default)

    def clear(self) -> None:
        super().clear()
        self.wildcards.clear()

    def candidates(self, topic: str) -> list[str]:
        """The filters that may match `topic`: its own (if subscribed) and every wildcard
        filter; the caller still tests the wildcard ones."""
        found = [topic] if topic in self else []
        found.extend(self.wildcards)
        return found

"""The indexed subscription table the embedded broker broadcasts through."""

from __future__ import annotations

from broker.embedded.subscriptions import SubscriptionTable


def test_exact_topics_are_looked_up_and_only_wildcards_are_candidates() -> None:
    table = SubscriptionTable()
    for topic_filter in ("im/t/a", "im/t/b", "im/u/alice", "devices/alice/#", "news/+"):
        table[topic_filter] = []
    assert table.candidates("im/t/a") == ["im/t/a", "devices/alice/#", "news/+"]
    assert table.candidates("im/t/zzz") == ["devices/alice/#", "news/+"]


def test_deleting_and_clearing_keep_the_wildcard_index_in_step() -> None:
    table = SubscriptionTable()
    table["a/#"] = []
    table["b/+/c"] = []
    table["exact"] = []
    del table["a/#"]
    assert table.candidates("x") == ["b/+/c"]
    table.pop("b/+/c")
    assert table.candidates("exact") == ["exact"]
    table.setdefault("c/#", [])
    assert table.candidates("c/1") == ["c/#"]
    table.clear()
    assert table.candidates("c/1") == []
    assert not table

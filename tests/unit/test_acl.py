"""The pure topic rule, evaluated with a fixed directory (a value, not a mock of our code)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from broker.acl import Access, ExtraRule, check_topic_access, filter_covers
from broker.topics import ParsedTopic, TopicKind, TopicScheme


class FixedDirectory:
    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members

    async def check_credentials(self, username: str, password: str) -> bool:
        return False

    async def is_member(self, user_id: str, thread_id: str) -> bool:
        return user_id in self.members.get(thread_id, set())

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        return [r for r in RULES if r.user_id in (None, user_id)]


RULES = [ExtraRule("devices/%u/#", "write"), ExtraRule("alerts/+", "read", user_id="alice")]


SCHEME = TopicScheme("im")
DIRECTORY = FixedDirectory({"t1": {"alice", "bob"}})


@pytest.mark.parametrize(
    ("user", "topic", "access", "allowed"),
    [
        ("alice", "im/up/alice", Access.PUBLISH, True),
        ("alice", "im/up/bob", Access.PUBLISH, False),
        ("alice", "im/up/alice", Access.SUBSCRIBE, False),
        ("alice", "im/t/t1", Access.SUBSCRIBE, True),
        ("alice", "im/t/t1", Access.RECEIVE, True),
        ("alice", "im/t/t1", Access.PUBLISH, False),
        ("carol", "im/t/t1", Access.SUBSCRIBE, False),
        ("carol", "im/t/t1", Access.RECEIVE, False),
        ("alice", "im/u/alice", Access.SUBSCRIBE, True),
        ("alice", "im/u/alice", Access.PUBLISH, False),
        ("alice", "im/u/bob", Access.RECEIVE, False),
        ("alice", "im/t/+", Access.SUBSCRIBE, False),
        ("alice", "im/#", Access.SUBSCRIBE, False),
        ("alice", "im/u/alice/extra", Access.SUBSCRIBE, False),
        ("alice", "other/topic", Access.PUBLISH, False),
        ("alice", "$SYS/#", Access.SUBSCRIBE, False),
        ("mqim-bridge", "im/up/+", Access.SUBSCRIBE, True),
        ("mqim-bridge", "im/t/t1", Access.PUBLISH, True),
        ("alice", "devices/alice/temp", Access.PUBLISH, True),
        ("alice", "devices/bob/temp", Access.PUBLISH, False),
        ("alice", "devices/alice/temp", Access.SUBSCRIBE, False),
        ("alice", "alerts/fire", Access.SUBSCRIBE, True),
        ("alice", "alerts/#", Access.SUBSCRIBE, False),
        ("bob", "alerts/fire", Access.RECEIVE, False),
    ],
)
async def test_topic_rule(user: str, topic: str, access: Access, allowed: bool) -> None:
    assert await check_topic_access(
        username=user, topic=topic, access=access, scheme=SCHEME, directory=DIRECTORY,
        service_users={"mqim-bridge"},
    ) is allowed


def test_topic_grammar_round_trips() -> None:
    scheme = TopicScheme("test/x1")
    assert scheme.parse(scheme.uplink("alice")) == ParsedTopic(TopicKind.UPLINK, "alice")
    assert scheme.parse(scheme.thread("t9")) == ParsedTopic(TopicKind.THREAD, "t9")
    assert scheme.parse(scheme.user("bob")) == ParsedTopic(TopicKind.USER, "bob")
    for bad in ("test/x1/up/a/b", "test/x1/up/", "test/x1/zz/a", "im/up/a", "test/x1/up/+",
                "test/x1/up/$a"):
        assert scheme.parse(bad) is None, bad


@pytest.mark.parametrize(
    ("rule", "topic", "covered"),
    [("a/+/c", "a/b/c", True), ("a/+/c", "a/+/c", True), ("a/+/c", "a/#", False),
     ("a/#", "a/b/c", True), ("a/#", "a", True), ("a/#", "a/+/#", True), ("a/b", "a/b/c", False),
     ("#", "$SYS/x", False), ("a/+", "a/b/c", False)],
)
def test_filter_covers(rule: str, topic: str, covered: bool) -> None:
    assert filter_covers(rule, topic) is covered

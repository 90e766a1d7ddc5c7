"""The pure topic rule, evaluated with a fixed directory (a value, not a mock of our code)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from broker.acl import (
    Access,
    ExtraRule,
    check_topic_access,
    filter_covers,
    filters_overlap,
    touches_tree,
)
from contract.errors import InvalidParameterError
from contract.topics import ParsedTopic, TopicKind, TopicScheme
from models.aclrule import check_rule_topic


class FixedDirectory:
    def __init__(self, members: dict[str, set[str]],
                 rules: Sequence[ExtraRule] | None = None) -> None:
        self.members = members
        self.rules = rules

    async def check_credentials(self, username: str, password: str) -> bool:
        return False

    async def receives(self, user_id: str, thread_id: str) -> bool:
        return user_id in self.members.get(thread_id, set())

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        rules = RULES if self.rules is None else self.rules
        return [r for r in rules if r.user_id in (None, user_id)]


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


# A rule that gives each user a namespace of their own, which is fine until someone registers the
# id "im" (the topic prefix): expanded, it would be all of im/#.
OWN_NAMESPACE = [ExtraRule("%u/#", "readwrite"), ExtraRule("%u", "read"),
                 ExtraRule("x/%u/#", "read"), ExtraRule("%u/+/x", "read")]
NAMESPACE_DIRECTORY = FixedDirectory({"t1": {"alice"}}, OWN_NAMESPACE)


@pytest.mark.parametrize(
    ("user", "topic", "access", "allowed"),
    [
        ("alice", "alice/#", Access.SUBSCRIBE, True),
        ("alice", "alice/x", Access.PUBLISH, True),
        ("alice", "alice", Access.RECEIVE, True),
        ("alice", "x/alice/y", Access.SUBSCRIBE, True),
        ("im", "x/im/y", Access.SUBSCRIBE, True),  # outside the tree, still granted
        ("im", "im/#", Access.SUBSCRIBE, False),
        ("im", "im/+", Access.SUBSCRIBE, False),
        ("im", "im/t/+", Access.SUBSCRIBE, False),
        ("im", "im/+/x", Access.SUBSCRIBE, False),
        ("im", "im/t/t1", Access.SUBSCRIBE, False),
        ("im", "im/t/t1", Access.RECEIVE, False),
        ("im", "im/u/alice", Access.RECEIVE, False),
        ("im", "im/up/alice", Access.PUBLISH, False),
        ("im", "im/other/thing", Access.PUBLISH, False),
        ("im", "im/other/thing", Access.RECEIVE, False),
        ("im", "im", Access.SUBSCRIBE, False),
        ("im", "im", Access.PUBLISH, False),
        ("im", "im/", Access.RECEIVE, False),
        ("im", "im/u/im", Access.SUBSCRIBE, True),  # the fixed rule: its own personal topic
    ],
)
async def test_rules_expanded_into_the_mqim_tree_grant_nothing_there(
    user: str, topic: str, access: Access, allowed: bool
) -> None:
    assert await check_topic_access(
        username=user, topic=topic, access=access, scheme=SCHEME, directory=NAMESPACE_DIRECTORY,
        service_users={"mqim-bridge"},
    ) is allowed


@pytest.mark.parametrize(
    ("user", "topic", "allowed"),
    [("org", "org/other/x", True), ("org", "org/+/x", False), ("org", "org/im/x", False),
     ("im", "org/im/#", False), ("im", "org/im", False), ("bob", "org/bob/z", True),
     ("bob", "bob/+/x", True)],
)
async def test_a_prefix_of_several_levels_is_guarded_too(
    user: str, topic: str, allowed: bool
) -> None:
    rules = [ExtraRule("%u/+/x", "read"), ExtraRule("org/%u/#", "read")]
    assert await check_topic_access(
        username=user, topic=topic, access=Access.SUBSCRIBE, scheme=TopicScheme("org/im"),
        directory=FixedDirectory({}, rules), service_users=(),
    ) is allowed


def test_rule_grants_judges_the_expanded_rule() -> None:
    rule = ExtraRule("%u/#", "read")
    assert rule.grants("bob", "bob/news", Access.RECEIVE, prefix="im")
    assert not rule.grants("im", "im/t/t1", Access.RECEIVE, prefix="im")
    assert not rule.grants("im", "im/#", Access.SUBSCRIBE, prefix="im")
    # The same user id under another prefix is just a namespace.
    assert rule.grants("im", "im/#", Access.SUBSCRIBE, prefix="chat")


@pytest.mark.parametrize(
    ("topic", "touches"),
    [("im", True), ("im/", True), ("im/t/x", True), ("im/#", True), ("#", True), ("+", True),
     ("+/#", True), ("+/t/x", True), ("+/+/+/+", True), ("im/a/b/c", True),
     ("imx/t/x", False), ("i/m", False), ("devices/im/#", False), ("x/+/#", False),
     ("$SYS/#", False), ("$share/g/x", False), ("", False), ("/im", False)],
)
def test_touches_tree(topic: str, touches: bool) -> None:
    assert touches_tree(topic, "im") is touches


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [("a/+", "+/b", True), ("a/#", "a", True), ("a/+", "a", False), ("a/b", "a/b/c", False),
     ("#", "$SYS/x", False), ("+/x", "$SYS/x", False), ("$SYS/#", "$SYS/x", True),
     ("a/b/#", "a/+/c/d", True), ("a/b", "a/c", False), ("x/#", "y/#", False)],
)
def test_filters_overlap(a: str, b: str, overlap: bool) -> None:
    assert filters_overlap(a, b) is overlap
    assert filters_overlap(b, a) is overlap


@pytest.mark.parametrize(
    ("topic", "prefix", "accepted"),
    [("devices/%u/#", "im", True), ("%u/#", "im", True), ("im", "im", False),
     ("im/x", "im", False), ("+/x", "im", False), ("#", "im", False),
     ("org/+/x", "org/im", False), ("org/#", "org/im", False), ("org/im", "org/im", False),
     ("org/x/#", "org/im", True), ("org", "org/im", True), ("org/%u/#", "org/im", True)],
)
def test_rule_topics_may_not_cover_the_tree(topic: str, prefix: str, accepted: bool) -> None:
    if accepted:
        check_rule_topic(topic, prefix)
    else:
        with pytest.raises(InvalidParameterError):
            check_rule_topic(topic, prefix)

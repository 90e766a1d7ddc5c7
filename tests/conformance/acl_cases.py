"""The ACL conformance table: who may publish, subscribe or receive where, in which state.

One row = one question and its one answer, asked of every implementation of the topic rule:
the Python rule (`broker.acl.check_topic_access`, behind the embedded broker and the HTTP hooks),
mqim's Mosquitto plugin, and the HTTP auth hooks of external brokers. Rows name users and threads
symbolically; each implementation gives them fresh concrete ids, so rows never share state.

The answer is what a client of that user gets: a user who is banned, or whose login session
ended, cannot connect, so every topic is refused to them, whatever the rule would say about the
topic (the connection is where the implementations refuse them).

An implementation that cannot be asked a row's question says so in `not_in`, with the reason;
the test then reports that row as skipped for it, never silently. An implementation known to
give the other answer is named in `differs`, with the reason and which side should change: the
test then asserts that it still does, so the deviation stays visible until it is resolved and the
entry removed. The table holds data only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from broker.acl import Access

PYTHON, MOSQUITTO, HOOKS = "python", "mosquitto", "hooks"
IMPLEMENTATIONS = (PYTHON, MOSQUITTO, HOOKS)

# Symbolic users. `prefix` is the user whose id is the topic prefix (a `%u` rule expands into
# the mqim tree for them); `service` is the bridge's service account.
ALICE, BOB, CAROL, PREFIX_USER, SERVICE = "alice", "bob", "carol", "prefix", "service"
USERS = (ALICE, BOB, CAROL, PREFIX_USER, SERVICE)
THREADS = ("t1", "t2")

PUBLISH, SUBSCRIBE, RECEIVE = Access.PUBLISH, Access.SUBSCRIBE, Access.RECEIVE

# Why an implementation cannot be asked some rows.
NO_RETAIN_IN_RULE = (
    "check_topic_access takes no retain flag: retained publishes are refused around the rule "
    "(api/mqtt_decide.py, the embedded broker's will check)"
)
HOOKS_REFUSE_EVERY_RETAINED_PUBLISH = (
    "api/mqtt_decide.py refuses every retained publish by a user, also where a rule grants the "
    "publish: EMQX and VerneMQ hand a retained message to later subscribers without asking "
    "whether its publisher still holds the rule, which Mosquitto does (check_retain_source); "
    "the README documents the difference. To resolve: decide whether rule topics may carry "
    "retained messages behind hooks; the table states the rule's answer (allowed)"
)
NO_RECEIVE_WITHOUT_SUBSCRIPTION = (
    "Mosquitto checks receive only when delivering to a subscription, and no membership or rule "
    "could let this user subscribe here first"
)


@dataclass(frozen=True)
class Rule:
    """An extra ACL rule: `access` (read, write, readwrite) on `topic`, where `%u` is the
    asking user's id, for the symbolic `user` or everyone (None)."""

    topic: str
    access: str
    user: str | None = None


@dataclass(frozen=True)
class State:
    """What the implementations know when the row's question is asked."""

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # thread -> users
    rules: tuple[Rule, ...] = ()
    banned: frozenset[str] = frozenset()
    # Users whose login session, the one that asks, has ended.
    ended: frozenset[str] = frozenset()
    # Users with another login session that has ended (theirs that asks is live).
    ended_elsewhere: frozenset[str] = frozenset()
    # Members who set recv_msg_opt 2 in every thread they are in, and dissolved threads: both
    # stay members in the database, but the broker delivers them nothing.
    not_delivered: frozenset[str] = frozenset()
    dissolved: frozenset[str] = frozenset()

    def receivers(self) -> dict[str, frozenset[str]]:
        """thread -> the users the broker delivers it to (models.thread.receiver_ids)."""
        return {thread: frozenset() if thread in self.dissolved else users - self.not_delivered
                for thread, users in self.members.items()}


@dataclass(frozen=True)
class AclCase:
    name: str
    user: str
    # `{alice}`, `{bob}`, `{carol}`, `{prefix}`, `{service}` are user ids, `{t1}`/`{t2}` thread
    # ids, `{p}` the topic prefix.
    topic: str
    access: Access
    allowed: bool
    state: State = State()
    retain: bool = False
    not_in: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    differs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def runs_in(self, implementation: str) -> bool:
        return implementation not in self.not_in


def members(**threads: set[str]) -> dict[str, frozenset[str]]:
    return {thread: frozenset(users) for thread, users in threads.items()}


ALICE_IN_T1 = State(members=members(t1={ALICE, BOB}))
BOB_IN_T1 = State(members=members(t1={BOB}))
DEVICES = State(rules=(Rule("devices/%u/#", "write"),))
NEWS = State(rules=(Rule("news/#", "read"),))
ALERTS_FOR_ALICE = State(rules=(Rule("alerts/+", "read", ALICE),))
CHAT = State(rules=(Rule("chat/%u", "readwrite"),))
LAMPS = State(rules=(Rule("home/%u-lamp", "write"),))
# `%u/#` gives every user a namespace; the user whose id is the prefix must not get the tree.
OWN_NAMESPACE = State(
    members=members(t1={BOB}),
    rules=(Rule("%u/#", "readwrite"), Rule("%u", "read"), Rule("%u/+/x", "read")),
)
MOSQUITTO_CANNOT_RECEIVE = MappingProxyType({MOSQUITTO: NO_RECEIVE_WITHOUT_SUBSCRIPTION})
RULE_CANNOT_RETAIN = MappingProxyType({PYTHON: NO_RETAIN_IN_RULE})

ACL_CASES: tuple[AclCase, ...] = (
    # Service accounts: everything.
    AclCase("service-publishes-to-a-thread", SERVICE, "{p}/t/{t1}", PUBLISH, True),
    AclCase("service-subscribes-to-everything", SERVICE, "#", SUBSCRIBE, True),
    AclCase("service-shares-the-uplinks", SERVICE, "$share/mqim/{p}/up/+", SUBSCRIBE, True),
    AclCase("service-receives-an-uplink", SERVICE, "{p}/up/{alice}", RECEIVE, True),
    AclCase("service-publishes-to-a-user", SERVICE, "{p}/u/{alice}", PUBLISH, True),
    # {p}/up/{self}: publish only, never retained.
    AclCase("own-uplink-publish", ALICE, "{p}/up/{alice}", PUBLISH, True),
    AclCase("own-uplink-publish-retained", ALICE, "{p}/up/{alice}", PUBLISH, False,
            retain=True, not_in=RULE_CANNOT_RETAIN),
    AclCase("others-uplink-publish", ALICE, "{p}/up/{bob}", PUBLISH, False),
    AclCase("own-uplink-subscribe", ALICE, "{p}/up/{alice}", SUBSCRIBE, False),
    AclCase("own-uplink-receive", ALICE, "{p}/up/{alice}", RECEIVE, False,
            not_in=MOSQUITTO_CANNOT_RECEIVE),
    # {p}/u/{self}: subscribe and receive, no publish.
    AclCase("own-personal-subscribe", ALICE, "{p}/u/{alice}", SUBSCRIBE, True),
    AclCase("own-personal-receive", ALICE, "{p}/u/{alice}", RECEIVE, True),
    AclCase("own-personal-publish", ALICE, "{p}/u/{alice}", PUBLISH, False),
    AclCase("others-personal-subscribe", ALICE, "{p}/u/{bob}", SUBSCRIBE, False),
    AclCase("others-personal-receive", ALICE, "{p}/u/{bob}", RECEIVE, False,
            not_in=MOSQUITTO_CANNOT_RECEIVE),
    # {p}/t/{thread}: members subscribe and receive; nobody but services publishes.
    AclCase("member-subscribes-to-thread", ALICE, "{p}/t/{t1}", SUBSCRIBE, True, ALICE_IN_T1),
    AclCase("member-receives-thread", ALICE, "{p}/t/{t1}", RECEIVE, True, ALICE_IN_T1),
    AclCase("member-publishes-to-thread", ALICE, "{p}/t/{t1}", PUBLISH, False, ALICE_IN_T1),
    AclCase("non-member-subscribes-to-thread", ALICE, "{p}/t/{t1}", SUBSCRIBE, False,
            BOB_IN_T1),
    AclCase("non-member-receives-thread", ALICE, "{p}/t/{t1}", RECEIVE, False, BOB_IN_T1),
    AclCase("unknown-thread-subscribe", ALICE, "{p}/t/{t2}", SUBSCRIBE, False),
    AclCase("member-of-another-thread-subscribes", ALICE, "{p}/t/{t2}", SUBSCRIBE, False,
            ALICE_IN_T1),
    # Governance: a member with recv_msg_opt 2, or of a dissolved thread, gets nothing of it.
    AclCase("not-delivered-member-subscribes", ALICE, "{p}/t/{t1}", SUBSCRIBE, False,
            State(members=members(t1={BOB, ALICE}), not_delivered=frozenset({ALICE}))),
    AclCase("not-delivered-member-receives", ALICE, "{p}/t/{t1}", RECEIVE, False,
            State(members=members(t1={BOB, ALICE}), not_delivered=frozenset({ALICE}))),
    AclCase("other-member-of-not-delivered-receives", BOB, "{p}/t/{t1}", RECEIVE, True,
            State(members=members(t1={BOB, ALICE}), not_delivered=frozenset({ALICE}))),
    AclCase("dissolved-thread-member-subscribes", ALICE, "{p}/t/{t1}", SUBSCRIBE, False,
            State(members=members(t1={ALICE, BOB}), dissolved=frozenset({"t1"}))),
    AclCase("dissolved-thread-member-receives", BOB, "{p}/t/{t1}", RECEIVE, False,
            State(members=members(t1={ALICE, BOB}), dissolved=frozenset({"t1"}))),
    # Topics of the tree that are none of the three kinds.
    AclCase("unknown-kind-in-tree", ALICE, "{p}/x/{alice}", SUBSCRIBE, False),
    AclCase("thread-topic-with-extra-level", ALICE, "{p}/t/{t1}/x", SUBSCRIBE, False,
            ALICE_IN_T1),
    AclCase("the-prefix-itself", ALICE, "{p}", SUBSCRIBE, False),
    AclCase("empty-thread-id", ALICE, "{p}/t/", SUBSCRIBE, False),
    AclCase("dollar-id-in-personal-topic", ALICE, "{p}/u/$x", SUBSCRIBE, False),
    # Wildcards and foreign topics: never for users without a rule.
    AclCase("thread-wildcard", ALICE, "{p}/t/+", SUBSCRIBE, False, ALICE_IN_T1),
    AclCase("tree-wildcard", ALICE, "{p}/#", SUBSCRIBE, False),
    AclCase("everything-wildcard", ALICE, "#", SUBSCRIBE, False),
    AclCase("prefix-level-wildcard", ALICE, "+/t/{t1}", SUBSCRIBE, False, ALICE_IN_T1),
    AclCase("shared-subscription-to-own-thread", ALICE, "$share/g/{p}/t/{t1}", SUBSCRIBE,
            False, ALICE_IN_T1),
    AclCase("sys-topics", ALICE, "$SYS/#", SUBSCRIBE, False),
    AclCase("control-responses", ALICE, "$CONTROL/mqim/v1/response", SUBSCRIBE, False),
    AclCase("control-commands", ALICE, "$CONTROL/mqim/v1", PUBLISH, False),
    AclCase("foreign-topic-without-rules", ALICE, "elsewhere/x", PUBLISH, False),
    AclCase("foreign-topic-subscribe-without-rules", ALICE, "elsewhere/x", SUBSCRIBE, False),
    # Extra rules: `%u`, write-only, read-only, one user's, wider filters.
    AclCase("rule-own-device-publish", ALICE, "devices/{alice}/temp", PUBLISH, True, DEVICES),
    AclCase("rule-own-device-publish-retained", ALICE, "devices/{alice}/temp", PUBLISH, True,
            DEVICES, retain=True, not_in=RULE_CANNOT_RETAIN,
            differs=MappingProxyType({HOOKS: HOOKS_REFUSE_EVERY_RETAINED_PUBLISH})),
    AclCase("rule-others-device-publish", ALICE, "devices/{bob}/temp", PUBLISH, False, DEVICES),
    AclCase("rule-write-only-subscribe", ALICE, "devices/{alice}/temp", SUBSCRIBE, False,
            DEVICES),
    AclCase("rule-write-only-receive", ALICE, "devices/{alice}/temp", RECEIVE, False, DEVICES),
    AclCase("rule-read-subscribe", ALICE, "news/today", SUBSCRIBE, True, NEWS),
    AclCase("rule-read-subscribe-wildcard", ALICE, "news/#", SUBSCRIBE, True, NEWS),
    AclCase("rule-read-subscribe-single-level", ALICE, "news/+", SUBSCRIBE, True, NEWS),
    AclCase("rule-read-receive", ALICE, "news/today", RECEIVE, True, NEWS),
    AclCase("rule-read-only-publish", ALICE, "news/today", PUBLISH, False, NEWS),
    AclCase("rule-read-does-not-cover-the-parent", ALICE, "newsroom", SUBSCRIBE, False, NEWS),
    AclCase("rule-covers-its-own-level", ALICE, "news", SUBSCRIBE, True, NEWS),
    AclCase("rule-of-one-user-for-them", ALICE, "alerts/fire", SUBSCRIBE, True,
            ALERTS_FOR_ALICE),
    AclCase("rule-of-one-user-for-another", BOB, "alerts/fire", SUBSCRIBE, False,
            ALERTS_FOR_ALICE),
    AclCase("rule-of-one-user-receive-by-another", BOB, "alerts/fire", RECEIVE, False,
            ALERTS_FOR_ALICE),
    AclCase("rule-single-level-same-filter", ALICE, "alerts/+", SUBSCRIBE, True,
            ALERTS_FOR_ALICE),
    AclCase("rule-single-level-wider-filter", ALICE, "alerts/#", SUBSCRIBE, False,
            ALERTS_FOR_ALICE),
    AclCase("rule-single-level-deeper-topic", ALICE, "alerts/fire/x", SUBSCRIBE, False,
            ALERTS_FOR_ALICE),
    AclCase("rule-readwrite-publish", ALICE, "chat/{alice}", PUBLISH, True, CHAT),
    AclCase("rule-readwrite-subscribe", ALICE, "chat/{alice}", SUBSCRIBE, True, CHAT),
    AclCase("rule-readwrite-for-another-id", ALICE, "chat/{bob}", SUBSCRIBE, False, CHAT),
    AclCase("rule-%u-inside-a-level", ALICE, "home/{alice}-lamp", PUBLISH, True, LAMPS),
    AclCase("rule-%u-inside-a-level-of-another", ALICE, "home/{bob}-lamp", PUBLISH, False,
            LAMPS),
    # `%u` rules expanded into the mqim tree grant nothing there.
    AclCase("own-namespace-outside-the-tree", BOB, "{bob}/x", PUBLISH, True, OWN_NAMESPACE),
    AclCase("own-namespace-subscribe", BOB, "{bob}/#", SUBSCRIBE, True, OWN_NAMESPACE),
    AclCase("own-namespace-wider-filter", BOB, "+/#", SUBSCRIBE, False, OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-tree-wildcard", PREFIX_USER, "{p}/#", SUBSCRIBE, False,
            OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-thread", PREFIX_USER, "{p}/t/{t1}", SUBSCRIBE, False,
            OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-thread-receive", PREFIX_USER, "{p}/t/{t1}", RECEIVE,
            False, OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-others-uplink", PREFIX_USER, "{p}/up/{bob}", PUBLISH,
            False, OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-unknown-kind", PREFIX_USER, "{p}/x/y", PUBLISH, False,
            OWN_NAMESPACE),
    AclCase("namespace-of-prefix-user-receive-in-tree", PREFIX_USER, "{p}/x/y", RECEIVE, False,
            OWN_NAMESPACE, not_in=MOSQUITTO_CANNOT_RECEIVE),
    AclCase("rule-%u-is-the-prefix", PREFIX_USER, "{p}", SUBSCRIBE, False, OWN_NAMESPACE),
    AclCase("rule-%u/+/x-into-the-tree", PREFIX_USER, "{p}/+/x", SUBSCRIBE, False,
            OWN_NAMESPACE),
    AclCase("prefix-user-keeps-own-personal-topic", PREFIX_USER, "{p}/u/{prefix}", SUBSCRIBE,
            True, OWN_NAMESPACE),
    AclCase("prefix-user-keeps-own-uplink", PREFIX_USER, "{p}/up/{prefix}", PUBLISH, True,
            OWN_NAMESPACE),
    # Bans and ended sessions: refused at the connection, so nothing is allowed.
    AclCase("banned-own-uplink", ALICE, "{p}/up/{alice}", PUBLISH, False,
            State(banned=frozenset({ALICE}))),
    AclCase("banned-own-personal", ALICE, "{p}/u/{alice}", SUBSCRIBE, False,
            State(banned=frozenset({ALICE}))),
    AclCase("banned-member-receives-thread", ALICE, "{p}/t/{t1}", RECEIVE, False,
            State(members=members(t1={ALICE, BOB}), banned=frozenset({ALICE}))),
    AclCase("banned-with-a-rule", ALICE, "news/today", SUBSCRIBE, False,
            State(rules=NEWS.rules, banned=frozenset({ALICE}))),
    AclCase("ended-session-own-uplink", ALICE, "{p}/up/{alice}", PUBLISH, False,
            State(ended=frozenset({ALICE}))),
    AclCase("ended-session-member-subscribes", ALICE, "{p}/t/{t1}", SUBSCRIBE, False,
            State(members=members(t1={ALICE}), ended=frozenset({ALICE}))),
    AclCase("another-session-ended", ALICE, "{p}/u/{alice}", SUBSCRIBE, True,
            State(ended_elsewhere=frozenset({ALICE}))),
    AclCase("another-user-banned", ALICE, "{p}/t/{t1}", SUBSCRIBE, True,
            State(members=members(t1={ALICE, BOB}), banned=frozenset({BOB}))),
    AclCase("another-users-session-ended", ALICE, "{p}/up/{alice}", PUBLISH, True,
            State(ended=frozenset({BOB}))),
)


@dataclass(frozen=True)
class RuleTopicCase:
    """Whether an extra rule on `topic` may be stored at all: rules never cover the mqim tree
    (`{p}` is the topic prefix). Asked of `models.aclrule.check_rule_topic` (python), the
    plugin's setRules (mosquitto) and mqim's admin API, whose rules the hooks answer from."""

    topic: str
    stored: bool
    not_in: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


RULE_TOPIC_CASES: tuple[RuleTopicCase, ...] = (
    RuleTopicCase("devices/%u/#", True),
    RuleTopicCase("news/#", True),
    RuleTopicCase("%u/#", True),  # `%u` is checked once expanded, on every access
    RuleTopicCase("%u", True),
    RuleTopicCase("a/+/b", True),
    RuleTopicCase("{p}x/%u/#", True),
    RuleTopicCase("/{p}", True),
    RuleTopicCase("a//b", True),
    RuleTopicCase("é" * 256, True),
    RuleTopicCase("a" * 257, False),
    RuleTopicCase("é" * 257, False),
    RuleTopicCase("{p}", False),
    RuleTopicCase("{p}/x", False),
    RuleTopicCase("{p}/#", False),
    RuleTopicCase("{p}/t/+", False),
    RuleTopicCase("#", False),
    RuleTopicCase("+", False),
    RuleTopicCase("+/#", False),
    RuleTopicCase("+/t/x", False),
    RuleTopicCase("+/+/+", False),
    RuleTopicCase("$SYS/#", False),
    RuleTopicCase("$share/g/news", False),
    RuleTopicCase("a/#/b", False),
    RuleTopicCase("a/b#", False),
    RuleTopicCase("a/b+", False),
    RuleTopicCase("", False),
)

"""The ACL conformance tables (acl_cases.py), asked of every implementation of the topic rule:
the access rows, and which extra-rule topics may be stored at all.

Each row runs once per implementation; a row that an implementation cannot express is reported
as skipped for it with the row's stated reason. The table's own shape is checked first.
"""

from __future__ import annotations

from collections import Counter

import pytest

from broker.mosquitto.control import ControlError
from contract.errors import InvalidParameterError
from models.aclrule import check_rule_topic
from tests.conformance.acl_cases import (
    ACL_CASES,
    IMPLEMENTATIONS,
    MOSQUITTO,
    PREFIX_USER,
    PUBLISH,
    PYTHON,
    RULE_TOPIC_CASES,
    SERVICE,
    AclCase,
    RuleTopicCase,
)
from tests.conformance.acl_runners import ASK
from tests.conformance.world import World

ROWS = [pytest.param(case, impl, id=f"{case.name}-{impl}")
        for case in ACL_CASES for impl in IMPLEMENTATIONS]


def test_the_table_is_well_formed() -> None:
    names = Counter(case.name for case in ACL_CASES)
    assert len(ACL_CASES) >= 40
    assert [n for n, k in names.items() if k > 1] == []
    for case in ACL_CASES:
        assert set(case.not_in) | set(case.differs) <= set(IMPLEMENTATIONS), case.name
        assert not set(case.not_in) & set(case.differs), case.name
        reasons = [*case.not_in.values(), *case.differs.values()]
        assert all(reason.strip() for reason in reasons), case.name
        # A row that fewer than two implementations answer compares nothing.
        assert sum(case.runs_in(i) for i in IMPLEMENTATIONS) >= 2, case.name
        assert not case.retain or case.access == PUBLISH, case.name
        state = case.state
        # The prefix user and the service account are shared by every row.
        touched = state.banned | state.ended | state.ended_elsewhere
        assert not touched & {PREFIX_USER, SERVICE}, case.name
        assert all(SERVICE not in users and users for users in state.members.values())
    # Both answers, every access and each implementation are exercised.
    assert {(c.access, c.allowed) for c in ACL_CASES} == {
        (a, b) for a in ("publish", "subscribe", "receive") for b in (True, False)}


@pytest.mark.parametrize(("case", "implementation"), ROWS)
async def test_acl_row(world: World, case: AclCase, implementation: str) -> None:
    if not case.runs_in(implementation):
        pytest.skip(f"{implementation} cannot express this row: {case.not_in[implementation]}")
    allowed = await ASK[implementation](world, case)
    what = (f"{implementation} {'allows' if allowed else 'refuses'} {case.user} to "
            f"{case.access} {case.topic} in {case.state}")
    if implementation in case.differs:
        # A known disagreement, still there; once resolved, drop the row's `differs` entry.
        assert allowed is not case.allowed, (
            f"{what}, as the table says: remove the `differs` entry "
            f"({case.differs[implementation]})")
        return
    assert allowed is case.allowed, what


async def rule_stored(world: World, implementation: str, topic: str) -> bool:
    if implementation == PYTHON:
        try:
            check_rule_topic(topic, world.prefix)
        except InvalidParameterError:
            return False
        return True
    if implementation == MOSQUITTO:
        try:
            await world.control.set_rules([{"users": ["*"], "topic": topic, "access": "read"}])
        except ControlError:
            return False
        await world.control.set_rules([])
        return True
    return await world.try_add_rule(topic)


@pytest.mark.parametrize(
    ("case", "implementation"),
    [pytest.param(case, impl, id=f"{case.topic[:40]!r}-{impl}")
     for case in RULE_TOPIC_CASES for impl in IMPLEMENTATIONS],
)
async def test_rule_topic_row(world: World, case: RuleTopicCase, implementation: str) -> None:
    if implementation in case.not_in:
        pytest.skip(f"{implementation} cannot express this row: {case.not_in[implementation]}")
    topic = case.topic.format(p=world.prefix)
    stored = await rule_stored(world, implementation, topic)
    assert stored is case.stored, f"{implementation} {'stores' if stored else 'refuses'} {topic!r}"

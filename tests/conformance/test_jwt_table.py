"""The JWT conformance table (jwt_cases.py), asked of every verifier of access tokens.

Each case runs once per verifier; a case a verifier cannot be asked is reported as skipped for
it with the case's stated reason, and a known disagreement (`differs`) is asserted to persist.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conformance.jwt_cases import JWT_CASES, VERIFIERS, TokenCase
from tests.conformance.jwt_runners import LOGIN
from tests.conformance.world import World

ROWS = [pytest.param(case, verifier, id=f"{case.name}-{verifier}")
        for case in JWT_CASES for verifier in VERIFIERS]


def test_the_table_is_well_formed() -> None:
    names = Counter(case.name for case in JWT_CASES)
    assert [n for n, k in names.items() if k > 1] == []
    assert {case.accepted for case in JWT_CASES} == {True, False}
    for case in JWT_CASES:
        assert set(case.not_in) | set(case.differs) <= set(VERIFIERS), case.name
        assert not set(case.not_in) & set(case.differs), case.name
        assert all(r.strip() for r in [*case.not_in.values(), *case.differs.values()])
        assert sum(case.runs_in(v) for v in VERIFIERS) >= 2, case.name


@pytest.mark.parametrize(("case", "verifier"), ROWS)
async def test_jwt_case(world: World, case: TokenCase, verifier: str) -> None:
    if not case.runs_in(verifier):
        pytest.skip(f"{verifier} cannot be asked this case: {case.not_in[verifier]}")
    accepted = await LOGIN[verifier](world, case)
    what = f"{verifier} {'accepts' if accepted else 'refuses'} the login"
    if verifier in case.differs:
        # A known disagreement, still there; once resolved, drop the case's `differs` entry.
        assert accepted is not case.accepted, (
            f"{what}, as the table says: remove the `differs` entry ({case.differs[verifier]})")
        return
    assert accepted is case.accepted, what

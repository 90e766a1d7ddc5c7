"""SessionStates behaves as amqtt's per-session transitions.Machine for every trigger sequence."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest
from amqtt.session import Session
from transitions import MachineError

from broker.embedded.session_states import MACHINE_INIT_STATES, SessionStates


def outcomes(make: str, triggers: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    session = Session()
    if make == "machine":
        MACHINE_INIT_STATES(session)
    else:
        session.transitions = cast(Any, SessionStates(session))
    seen = []
    for trigger in triggers:
        before = session.last_connect_time, session.last_disconnect_time
        try:
            getattr(session.transitions, trigger)()
            refused = False
        except MachineError:
            refused = True
        changed = (session.last_connect_time, session.last_disconnect_time) != before
        seen.append((session.transitions.state, str(session.transitions.is_connected()),
                     refused or changed))
    return seen


@pytest.mark.parametrize("triggers", [
    seq for n in range(1, 5) for seq in itertools.product(("connect", "disconnect"), repeat=n)])
def test_same_states_refusals_and_callbacks_as_amqtt(triggers: tuple[str, ...]) -> None:
    assert outcomes("light", triggers) == outcomes("machine", triggers)


def test_install_gives_new_sessions_the_light_states() -> None:
    from broker.embedded import session_states

    session_states.install()
    assert isinstance(Session().transitions, SessionStates)

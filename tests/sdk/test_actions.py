"""The SDK's message actions against real servers (both stacks): react, unreact, edit, unsend
answer with the seq of the entry they wrote (None when nothing changed), refusals are typed, and
the other side's `events()` gets each action entry once, in seq order, with no gap to fill."""

from __future__ import annotations

import pytest

from mqim_client import (
    CommandError,
    MessageEditEvent,
    MessageEvent,
    MessageReactionEvent,
    MessageUnsendEvent,
)
from tests.sdk.conftest import Factory, signed_up
from tests.sdk.test_client import next_of


async def test_actions_answer_with_their_entry_and_reach_the_other_side(
        clients: Factory) -> None:
    alice, bob = await signed_up(clients()), await signed_up(clients())
    thread_id = await alice.create_thread("group", [bob.user_id])
    await alice.connect()
    await bob.connect()
    sent = await alice.send(thread_id, "lunch at 12?")
    reacted = await bob.react(thread_id, sent.message_id, "👍")
    again = await bob.react(thread_id, sent.message_id, "👍")
    assert (reacted.seq, again.seq) == (sent.seq + 1, None)  # a repeat changes nothing
    edited = await alice.edit(thread_id, sent.message_id, body="lunch at 12:30?")
    removed = await bob.unreact(thread_id, sent.message_id, "👍")
    unsent = await alice.unsend(thread_id, sent.message_id)
    assert [edited.seq, removed.seq, unsent.seq] == [sent.seq + 2, sent.seq + 3, sent.seq + 4]

    with pytest.raises(CommandError) as refused:
        await bob.edit(thread_id, sent.message_id, body="not mine")
    assert refused.value.code in (4001, 4005)  # unsent by now, and never bob's

    entry = MessageEvent | MessageReactionEvent | MessageEditEvent | MessageUnsendEvent
    seen: list[MessageEvent | MessageReactionEvent | MessageEditEvent | MessageUnsendEvent] = []
    for _ in range(5):
        event = await next_of(bob, lambda e: isinstance(e, entry))
        assert isinstance(event, entry)
        seen.append(event)
    assert [type(e) for e in seen] == [MessageEvent, MessageReactionEvent, MessageEditEvent,
                                       MessageReactionEvent, MessageUnsendEvent]
    assert [e.seq for e in seen] == list(range(sent.seq, sent.seq + 5))
    edit = seen[2]
    assert isinstance(edit, MessageEditEvent)
    assert edit.body == "lunch at 12:30?"
    assert bob.stats.caught_up == 0  # the action entries filled the seqs: nothing was missing

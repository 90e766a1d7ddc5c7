"""The rules and queries of polls (docs/messages.md); the tables are in models/poll.py.

A poll is shown by a message of type `poll` whose `content` carries the question, the options
with their vote counts, and `closed`: every vote and close rewrites that content, so history
shows the current counts with no extra query. The votes themselves (who chose what) are
PollVote rows, one per user and option.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from contract.errors import InvalidParameterError, PollClosedError
from models.clock import epoch_ms, utcnow
from models.message import Message
from models.poll import Poll, PollOption, PollVote


def new_poll_id() -> str:
    return "p" + secrets.token_hex(8)


def initial_content(poll_id: str, question: str, options: list[str], multiple: bool,
                    closes_at: datetime | None) -> dict[str, Any]:
    """The content of a new poll's message: option ids are the options' indexes."""
    return {
        "poll_id": poll_id, "question": question,
        "options": [{"option_id": i, "text": t, "votes": 0} for i, t in enumerate(options)],
        "multiple": multiple, "closed": False,
        "closes_at": epoch_ms(closes_at) if closes_at else None,
    }


async def store_poll(poll_id: str, message: Message, creator_id: str, question: str,
                     options: list[str], multiple: bool, closes_at: datetime | None) -> None:
    """The poll's rows, for its message already stored (one transaction)."""
    async with in_transaction() as conn:
        _ = await Poll.create(
            id=poll_id, thread_id=message.thread_id, message_id=message.id,
            creator_id=creator_id, question=question, multiple=multiple, closes_at=closes_at,
            using_db=conn)
        await PollOption.bulk_create(
            [PollOption(poll_id=poll_id, option_id=i, text=t) for i, t in enumerate(options)],
            using_db=conn)


async def find_poll(thread_id: str, poll_id: str, conn: BaseDBAsyncClient | None = None,
                    ) -> Poll | None:
    return await Poll.filter(id=poll_id, thread_id=thread_id).using_db(conn).first()


def is_closed(poll: Poll, now: datetime | None = None) -> bool:
    """Closed by its creator or an admin, or past its `closes_at`."""
    return poll.closed or (poll.closes_at is not None and poll.closes_at <= (now or utcnow()))


async def option_ids_of(conn: BaseDBAsyncClient | None, poll_id: str) -> list[int]:
    return [cast(int, i) for i in await PollOption.filter(poll_id=poll_id).using_db(conn)
            .order_by("option_id").values_list("option_id", flat=True)]


async def replace_votes(conn: BaseDBAsyncClient, poll: Poll, user_id: str,
                        option_ids: list[int]) -> bool:
    """Make `option_ids` the user's whole choice; False when it already was.

    PollClosedError (4006) once the poll is closed; InvalidParameterError (1001) for an option
    the poll does not have, a repeated one, or more than one on a single-choice poll."""
    if is_closed(poll):
        raise PollClosedError(f"poll {poll.id} is closed")
    if len(set(option_ids)) != len(option_ids):
        raise InvalidParameterError("option_ids must be distinct")
    if len(option_ids) > 1 and not poll.multiple:
        raise InvalidParameterError("this poll takes one option only")
    unknown = set(option_ids) - set(await option_ids_of(conn, poll.id))
    if unknown:
        raise InvalidParameterError(f"no option {min(unknown)} in poll {poll.id}")
    query = PollVote.filter(poll_id=poll.id, user_id=user_id).using_db(conn)
    before = {cast(int, i) for i in await query.values_list("option_id", flat=True)}
    wanted = set(option_ids)
    if before == wanted:
        return False
    if before - wanted:
        await query.filter(option_id__in=sorted(before - wanted)).delete()
    await PollVote.bulk_create(
        [PollVote(poll_id=poll.id, user_id=user_id, option_id=i)
         for i in option_ids if i not in before], using_db=conn)
    return True


async def tally(conn: BaseDBAsyncClient | None, poll_id: str) -> list[tuple[int, str, list[str]]]:
    """(option_id, text, voters in the order they voted) of each option, in option order."""
    options = await PollOption.filter(poll_id=poll_id).using_db(conn).order_by("option_id")
    voters: dict[int, list[str]] = {o.option_id: [] for o in options}
    for option_id, user_id in await PollVote.filter(poll_id=poll_id).using_db(conn).order_by(
            "id").values_list("option_id", "user_id"):
        voters.setdefault(int(option_id), []).append(str(user_id))
    return [(o.option_id, o.text, voters[o.option_id]) for o in options]


async def refresh_message(conn: BaseDBAsyncClient, message: Message, poll: Poll,
                          counts: list[tuple[int, str, list[str]]]) -> None:
    """Write the poll's current counts and `closed` into its message's content."""
    content = dict(message.content or {})
    content["options"] = [{"option_id": i, "text": t, "votes": len(v)} for i, t, v in counts]
    content["closed"] = is_closed(poll)
    message.content = content
    await message.save(using_db=conn, update_fields=["content"])


async def close(conn: BaseDBAsyncClient, poll: Poll) -> None:
    poll.closed = True
    await poll.save(using_db=conn, update_fields=["closed"])

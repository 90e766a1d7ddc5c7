"""The current state of a page of messages (docs/messages.md), and the rule of mentions.

The state is read in ONE statement whatever the page's size, so history stays about as cheap
with reactions and replies as without:

- `reactions`: the page's rows of `message_reaction` (its unique key starts with message_id),
  in the order they were added;
- `reply_counts`: replies among non-deleted messages, one GROUP BY over the (thread_id, reply_to)
  index for the page's message ids, within what the reader may see;
- the status of the reader's own messages: one aggregate over the other current members'
  read and delivered marks (thread_member's (thread_id, user_id) index).

A UNION ALL of tagged rows (as models/append.py's read), every column text so both dialects
agree on the types. Mentions are checked inside models/append.py's read: the mentioned users'
memberships come with the senders'.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from tortoise import connections

from contract.errors import InvalidParameterError, MqimError, NotAdminError
from models.message import Draft
from models.sqldialect import SqlDialect

# The mention of everyone in a thread (owner and admins only: models/append.py); it counts in
# every member's unread_mentions (models/threadlist.py).
ALL_MENTION = "@all"


@dataclass(frozen=True)
class Marks:
    """The lowest read and delivered positions among the other current members, each at least
    `join_seq - 1` (a member who joined after a message does not hold its status back, as in
    the receipts' recipients); None when the reader is alone in the thread."""

    read: int
    delivered: int

    def status(self, seq: int) -> str:
        if self.read >= seq:
            return "read"
        return "delivered" if self.delivered >= seq else "sent"


@dataclass
class PageState:
    reactions: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # id -> emoji -> users
    reply_counts: dict[str, int] = field(default_factory=dict)
    marks: Marks | None = None

    def status(self, seq: int) -> str:
        """`sent` in a thread where the reader is alone: nobody else can receive it."""
        return "sent" if self.marks is None else self.marks.status(seq)


async def page_state(thread_id: str, reader_id: str, message_ids: Sequence[str], *,
                     high: int | None, own: bool) -> PageState:
    """The state of the messages `message_ids` of a thread; replies counted up to `high` (the
    reader's visible end, None: no end); the other members' marks when `own` (the page holds
    messages of the reader)."""
    state = PageState()
    if not message_ids and not own:
        return state
    conn = connections.get("default")
    d = SqlDialect(conn)
    parts: list[str] = []
    if message_ids:
        ids = sorted(set(message_ids))
        parts.append(
            "SELECT 'r' AS k, r.message_id AS a, r.emoji AS b, r.user_id AS c, "  # noqa: S608
            f"{d.epoch('r.created_at')} AS e, CAST(r.id AS TEXT) AS f FROM message_reaction r "
            f"WHERE {d.values_in('r.message_id', ids)}")
        # Placeholders are taken in the text's order (SQLite numbers a bare `?` after the last).
        thread = _param(d, thread_id)
        replied = d.values_in("x.reply_to", ids)
        bound = f" AND x.seq <= {_param(d, high)}" if high is not None else ""
        parts.append(
            "SELECT 'c', x.reply_to, NULL, CAST(COUNT(*) AS TEXT), NULL, NULL "  # noqa: S608
            f"FROM message x WHERE x.thread_id = {thread} AND {replied} "
            f"AND x.kind = 'message' AND NOT x.deleted{bound} GROUP BY x.reply_to")
    if own:
        thread, reader = _param(d, thread_id), _param(d, reader_id)
        floor = "m.join_seq - 1"
        read = f"CASE WHEN m.read_seq > {floor} THEN m.read_seq ELSE {floor} END"
        got = (f"CASE WHEN m.delivered_seq > m.read_seq AND m.delivered_seq > {floor} "
               f"THEN m.delivered_seq ELSE {read} END")
        parts.append(
            f"SELECT 's', CAST(MIN({read}) AS TEXT), CAST(MIN({got}) AS TEXT), "  # noqa: S608
            f"CAST(COUNT(*) AS TEXT), NULL, NULL FROM thread_member m "
            f"WHERE m.thread_id = {thread} AND m.user_id <> {reader}")
    _, rows = await conn.execute_query(" UNION ALL ".join(parts), d.params)
    added: list[tuple[float, int, str, str, str]] = []
    for k, a, b, c, e, f in (tuple(row) for row in rows):
        if k == "r":
            added.append((float(e or 0), int(f), a, b, c))
        elif k == "c":
            state.reply_counts[a] = int(c)
        elif int(c) > 0:
            state.marks = Marks(read=int(a), delivered=int(b))
    for _, _, message_id, emoji, user_id in sorted(added):
        state.reactions.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return state


def _param(d: SqlDialect, value: object) -> str:
    """A placeholder for one more parameter of `d`'s statement."""
    d.params.append(value)
    return d.numbered(len(d.params))


def mention_refusal(draft: Draft, admin: bool, members: Container[tuple[str, str]],
                    ) -> MqimError | None:
    """Why a draft's mentions are refused, if they are: each names a current member of the
    thread (`members` holds (thread_id, user_id) pairs; 1001 naming the others), or is "@all",
    which only the owner and admins (`admin`: the sender is one) may use (3007)."""
    if ALL_MENTION in draft.mentions and not admin:
        return NotAdminError(f"only the owner and admins may mention {ALL_MENTION}")
    strangers = [u for u in dict.fromkeys(draft.mentions)
                 if u != ALL_MENTION and (draft.thread_id, u) not in members]
    if strangers:
        return InvalidParameterError(
            f"mentions must be members of the thread: {', '.join(strangers)} not in it")
    return None

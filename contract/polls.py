"""Polls and forwarding on the wire (docs/messages.md): the request bodies of `POST …/polls`,
`POST …/polls/{pid}/votes` and `POST …/messages/{mid}/forward`, and what those routes and
`GET …/polls/{pid}` answer. A vote and a close answer with `contract.msgactions.ActionResult`,
like the other actions on a message; the `vote` op's command is `contract.commands.VoteCommand`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from contract.commands import MAX_POLL_OPTIONS
from contract.fields import INT_MAX, IdField
from contract.http import Shape

QUESTION_MAX = 300
OPTION_TEXT_MAX = 100
OPTIONS_MIN = 2
OPTIONS_MAX = MAX_POLL_OPTIONS
FORWARD_TARGETS_MAX = 10


def _clean_text(value: str, what: str, limit: int) -> str:
    """Trimmed; refused when empty, longer than `limit`, or carrying control characters."""
    text = value.strip()
    if not text:
        raise ValueError(f"{what} must not be empty")
    if len(text) > limit:
        raise ValueError(f"{what} must be at most {limit} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise ValueError(f"{what} must not contain control characters")
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CreatePollBody(_Body):
    """`options` are the texts, distinct, in the order shown; option ids are their indexes."""

    question: StrictStr = Field(max_length=4 * QUESTION_MAX)
    options: list[StrictStr] = Field(min_length=OPTIONS_MIN, max_length=OPTIONS_MAX)
    multiple: StrictBool = False
    closes_at: Annotated[StrictInt, Field(ge=0, le=INT_MAX)] | None = None  # epoch ms

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        return _clean_text(value, "question", QUESTION_MAX)

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str]) -> list[str]:
        texts = [_clean_text(v, f"option {i}", OPTION_TEXT_MAX) for i, v in enumerate(value)]
        if len({t.casefold() for t in texts}) != len(texts):
            raise ValueError("options must be distinct")
        return texts


class VoteBody(_Body):
    """The caller's whole choice: it replaces their earlier votes; an empty list retracts."""

    option_ids: list[Annotated[StrictInt, Field(ge=0, le=INT_MAX)]] = Field(
        max_length=OPTIONS_MAX)


class ForwardBody(_Body):
    thread_ids: list[IdField] = Field(min_length=1, max_length=FORWARD_TARGETS_MAX)


class PollCreated(Shape):
    """`POST …/polls`: the poll and the message that shows it."""

    poll_id: str
    message_id: str
    seq: int
    thread_id: str


class PollOptionView(Shape):
    option_id: int
    text: str
    votes: int
    voters: list[str]


class PollView(Shape):
    """`GET …/polls/{pid}`: the poll as it stands (`closed` is also true once `closes_at` has
    passed)."""

    poll_id: str
    thread_id: str
    message_id: str
    creator_id: str
    question: str
    multiple: bool
    closed: bool
    closes_at: int | None
    created_at: int
    options: list[PollOptionView]


class Forwarded(Shape):
    """One target of `POST …/messages/{mid}/forward`: where the copy was stored."""

    thread_id: str
    message_id: str
    seq: int

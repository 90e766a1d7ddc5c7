"""What the actions on a message answer (docs/messages.md): reactions, unsend, edit, vote."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ActionResult(BaseModel):
    """The timeline entry an action wrote: `seq` is None when nothing changed (a reaction that
    was already there, a vote for what the caller had already chosen)."""

    model_config = ConfigDict(frozen=True)
    thread_id: str
    message_id: str
    seq: int | None

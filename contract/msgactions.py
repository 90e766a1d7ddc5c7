"""What the actions on a message answer (docs/messages.md): reactions, unsend, edit, vote, and
the versions of an edited message."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ActionResult(BaseModel):
    """The timeline entry an action wrote: `seq` is None when nothing changed (a reaction that
    was already there, a vote for what the caller had already chosen)."""

    model_config = ConfigDict(frozen=True)
    thread_id: str
    message_id: str
    seq: int | None


class MessageVersionView(BaseModel):
    """One version of a message (`GET …/messages/{mid}/edits`, oldest first): version 0 is the
    message as sent, `edited_at` its send time; each edit adds the next version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int
    body: str | None
    content: dict[str, Any] | None
    edited_at: int

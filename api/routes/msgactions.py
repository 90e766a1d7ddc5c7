"""Reactions, unsend and edit of a message (docs/messages.md): parse -> actions/msgactions.py
(the same use cases as the MQTT ops) -> serialise."""

from __future__ import annotations

from starlette.routing import Route

routes: list[Route] = []

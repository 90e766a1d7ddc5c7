"""Polls, votes and forwarding (docs/messages.md): parse -> actions/polls.py, actions/forward.py
-> serialise."""

from __future__ import annotations

from starlette.routing import Route

routes: list[Route] = []

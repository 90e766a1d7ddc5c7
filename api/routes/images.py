"""Images set by upload (docs/messages.md): `PUT /api/me/avatar`, `PUT /api/threads/{id}/image`."""

from __future__ import annotations

from starlette.routing import Route

routes: list[Route] = []

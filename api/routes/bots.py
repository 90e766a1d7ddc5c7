"""bots routes (issue 15): filled in by their helper."""

from __future__ import annotations

from starlette.routing import Route

routes: list[Route] = []

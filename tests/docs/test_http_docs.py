"""docs/http-api.md against the routes the API serves: every method and path of `api/routes/` is
a row of the route table, and the table lists nothing the server does not serve."""

from __future__ import annotations

import importlib
import pkgutil
import re

from starlette.routing import BaseRoute, Mount, Route

import api.routes
from tests.docs.markdown import DOCS, read, section, table_rows


def _normalised(path: str) -> str:
    """A path with its parameters blanked: `{thread_id:id}` and `{id}` are both `{}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _flatten(routes: list[BaseRoute], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= _flatten(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            # Starlette adds HEAD to every GET route by itself.
            found |= {f"{method} {_normalised(prefix + route.path)}"
                      for method in route.methods or () if method != "HEAD"}
    return found


def served_routes() -> set[str]:
    found: set[str] = set()
    for info in pkgutil.iter_modules(api.routes.__path__):
        module = importlib.import_module(f"api.routes.{info.name}")
        found |= _flatten(list(getattr(module, "routes", [])))
    return found


def documented_routes() -> set[str]:
    rows = table_rows(section(read(DOCS / "http-api.md"), "Every route"))
    documented = set()
    for route in rows:
        method, _, path = route.partition(" ")
        documented.add(f"{method} {_normalised(path)}")
    return documented


def test_every_served_route_is_documented() -> None:
    served = served_routes()
    assert len(served) > 40, "the route modules were not found"
    assert sorted(served - documented_routes()) == [], "routes missing from docs/http-api.md"


def test_every_documented_route_is_served() -> None:
    assert sorted(documented_routes() - served_routes()) == [], "docs/http-api.md lists routes "\
        "the server does not serve"

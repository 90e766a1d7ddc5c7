"""The row types of the OpenAPI table (api/openapi_routes.py): an operation and a query
parameter, each described by the Python types the route really uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from contract.errors import MqimError
from contract.fields import INT_MAX

# Who may call: "bearer" a user's access token, "admin" a server admin's, "hook" the broker
# hooks' shared secret, "none" anyone.
Auth = Literal["none", "bearer", "admin", "hook"]
# Responses that are not the JSON envelope: the Prometheus text, an HTML page, a bare JSON
# document (the OpenAPI document itself, the brokers' own reply formats).
Raw = Literal["prometheus", "html", "openapi", "hook"]


@dataclass(frozen=True)
class Query:
    """A query parameter: its Python type gives its schema (bounds included)."""

    name: str
    type: Any
    description: str
    required: bool = False
    where: Literal["query", "header"] = "query"


@dataclass(frozen=True)
class Op:
    """One operation. `data` is the type of the envelope's `data` (None: `null`); `statuses` the
    success statuses, the usual one first; `errors` the errors beyond those api/openapi.py adds
    for the auth, body and query parameters of the row."""

    summary: str
    auth: Auth = "bearer"
    body: type[BaseModel] | None = None
    data: Any = None
    statuses: tuple[int, ...] = (200,)
    query: tuple[Query, ...] = ()
    errors: tuple[type[MqimError], ...] = ()
    raw: Raw | None = None
    hook_bodies: tuple[type[BaseModel], ...] = ()  # a hook's request shapes (JSON or form)
    hook_replies: Any = None  # a hook's 200 JSON reply type
    go_auth: bool = False  # mosquitto-go-auth: form bodies too, and three reply modes
    text_reply: tuple[str, ...] = ()  # RabbitMQ's backend: form bodies only, a text/plain word
    # Error answers that are no MqimError: (status, number, name).
    answers: tuple[tuple[int, int, str], ...] = ()



def int_in(low: int, high: int = INT_MAX) -> Any:
    """An int query parameter's type, bounds included."""
    return Annotated[int, Field(ge=low, le=high)]


def limit_query(default: int, high: int) -> Query:
    return Query("limit", int_in(1, high), f"page size, 1 to {high} (default {default})")

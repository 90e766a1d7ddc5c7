"""The OpenAPI 3.1 document of the HTTP API, built from the routes the app serves and the models
they use: path parameters from the routes' convertors, bodies and answers from the pydantic
models named by api/openapi_routes.py (pydantic writes their JSON schemas), error statuses from
the envelope's map (api/envelope.py), tags from the route modules' docstrings.

Nothing here is hand-written schema, and nothing is served: `build_document` is a pure function of
the routes and the table, and refuses (`TableDriftError`) when the two disagree.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from starlette.convertors import Convertor, IntegerConvertor
from starlette.routing import BaseRoute, Mount, Route

from api.envelope import status_of
from api.openapi_ops import Op
from api.openapi_routes import OPERATIONS
from api.routes import IdConvertor, NumConvertor
from contract.errors import (
    ForbiddenError,
    InternalError,
    InvalidParameterError,
    MqimError,
    NotFoundError,
    PayloadTooLargeError,
    TokenExpiredError,
    TokenInvalidError,
)
from contract.fields import ID_PATTERN
from contract.hooks import GoAuthStatus
from contract.http import ErrorEnvelope, OkEnvelope

REF = "#/components/schemas/{model}"
ID_MAX = 64
NUM_MAX = 10**18 - 1  # NumConvertor takes at most 18 digits
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_AUTH_ERRORS = (TokenInvalidError, TokenExpiredError)
_BODY_ERRORS = (InvalidParameterError, PayloadTooLargeError)
_HOOK_ERRORS = (*_BODY_ERRORS, TokenInvalidError, NotFoundError)
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "bearer": [{"bearer": []}],
    "admin": [{"bearer": []}],
    "hook": [{"hookBearer": []}, {"hookHeader": []}, {"hookQuery": []}],
}
_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "A user's access token (register, login or refresh)."},
    "hookBearer": {"type": "http", "scheme": "bearer",
                   "description": "The broker hooks' shared secret, MQIM_MQTT_HOOK_SECRET."},
    "hookHeader": {"type": "apiKey", "in": "header", "name": "X-Mqim-Hook-Secret"},
    "hookQuery": {"type": "apiKey", "in": "query", "name": "secret"},
}
_AUTH_TEXT = {
    "none": "No authentication.",
    "bearer": "Needs a user's access token.",
    "admin": "Needs a server admin's access token (403, 1004 for anyone else).",
    "hook": "Needs the hook secret; answers 404 while MQIM_MQTT_HOOK_SECRET is empty.",
}
DESCRIPTION = """\
mqim's HTTP API. Every JSON answer is an envelope: `{"code": 0, "msg": "ok", "data": ...}` on
success, `{"code": <number>, "msg": "...", "error": "<snake_case>"}` on failure; each operation
lists the error numbers it can answer under their HTTP status (also as `x-mqim-errors`).
Realtime traffic (messages, typing, receipts) goes over MQTT; see docs/mqtt.md."""


class TableDriftError(Exception):
    """The served routes and api/openapi_routes.py disagree."""

    def __init__(self, missing: Sequence[str], stale: Sequence[str]) -> None:
        super().__init__(f"served routes without a row in api/openapi_routes.py: {list(missing)}; "
                         f"rows no route serves: {list(stale)}")
        self.missing = list(missing)
        self.stale = list(stale)


@dataclass(frozen=True)
class Served:
    method: str
    path: str  # as Starlette spells it, convertors included
    route: Route


def served_operations(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[Served]:
    """Every (method, path) the routes answer; HEAD is Starlette's own twin of GET."""
    for route in routes:
        if isinstance(route, Mount):
            yield from served_operations(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield Served(method, prefix + route.path, route)


def check_table(served: Sequence[Served], table: dict[tuple[str, str], Op]) -> None:
    keys = {(s.method, s.path) for s in served}
    missing = sorted(f"{m} {p}" for m, p in keys - table.keys())
    stale = sorted(f"{m} {p}" for m, p in table.keys() - keys)
    if missing or stale:
        raise TableDriftError(missing, stale)


def openapi_path(path: str) -> str:
    return _PARAM.sub(r"{\1}", path)


def _param_schema(convertor: Convertor[Any]) -> dict[str, Any]:
    if isinstance(convertor, IdConvertor):
        return {"type": "string", "pattern": f"^(?:{ID_PATTERN})$", "maxLength": ID_MAX}
    if isinstance(convertor, NumConvertor):
        return {"type": "integer", "minimum": 0, "maximum": NUM_MAX}
    if isinstance(convertor, IntegerConvertor):
        return {"type": "integer", "minimum": 0}
    return {"type": "string"}


def _envelope(data: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A $ref to OkEnvelope's own schema with `data` typed (every field is always present),
    one component per data type: `OkThreadInfo`, `OkThreadListItemList`, `OkNull`."""
    listed = data.get("type") == "array" and "items" in data
    target = data["items"] if listed else data
    base = ("Null" if target.get("type") == "null"
            else str(target.get("$ref", "")).rsplit("/", 1)[-1])
    name = f"Ok{base}{'List' if listed else ''}" if base else ""
    schema = OkEnvelope.model_json_schema(mode="serialization")
    schema["properties"]["data"] = data
    schema["required"] = list(schema["properties"])
    if not name:
        return schema  # an anonymous shape: inline
    schema["title"] = name
    if components.setdefault(name, schema) != schema:
        del schema["title"]
        return schema  # a model of ours already has that name: inline
    return {"$ref": REF.format(model=name)}


def _errors_of(op: Op) -> list[type[MqimError]]:
    found: list[type[MqimError]] = [InternalError, *op.errors]
    if op.auth in ("bearer", "admin"):
        found += _AUTH_ERRORS
    if op.auth == "admin":
        found.append(ForbiddenError)  # not an admin
    if op.auth == "hook":
        found += _HOOK_ERRORS
    if op.body is not None:
        found += _BODY_ERRORS
    if op.query:
        found.append(InvalidParameterError)
    return found


def _error_responses(op: Op, error_ref: dict[str, Any]) -> dict[str, Any]:
    by_status: dict[int, set[tuple[int, str]]] = {}
    for error in _errors_of(op):
        by_status.setdefault(status_of(error), set()).add((error.number, error.code.value))
    for status, number, name in op.answers:
        by_status.setdefault(status, set()).add((number, name))
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        codes = sorted(by_status[status])
        response: dict[str, Any] = {
            "description": ", ".join(f"{number} {name}" for number, name in codes),
            "content": {"application/json": {"schema": error_ref}},
            "x-mqim-errors": [{"code": number, "error": name} for number, name in codes],
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[str(status)] = response
    return responses


class _Schemas:
    """Every model of the table, turned into JSON schemas in one pass so that they share one
    set of components (pydantic names them, and tells apart two models of the same name)."""

    def __init__(self, table: dict[tuple[str, str], Op]) -> None:
        inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [
            ("error", "serialization", TypeAdapter(ErrorEnvelope)),
            ("go-auth-status", "serialization", TypeAdapter(GoAuthStatus)),
        ]
        for key, op in table.items():
            if op.body is not None:
                inputs.append(((key, "body"), "validation", TypeAdapter(op.body)))
            if op.raw is None:
                inputs.append(((key, "data"), "serialization", TypeAdapter(op.data)))
            for i, model in enumerate(op.hook_bodies):
                inputs.append(((key, f"hook-body-{i}"), "validation", TypeAdapter(model)))
            if op.hook_replies is not None:
                inputs.append(((key, "hook-reply"), "serialization",
                               TypeAdapter(op.hook_replies)))
        schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF)
        self.by_key = {key: schema for (key, _mode), schema in schemas.items()}
        self.components: dict[str, Any] = definitions.get("$defs", {})

    def __getitem__(self, key: Any) -> dict[str, Any]:
        schema: dict[str, Any] = self.by_key[key]
        return schema


def _tag(route: Route) -> str:
    return str(getattr(route.endpoint, "__module__", "api")).rsplit(".", 1)[-1]


def _tag_description(route: Route) -> str:
    module = sys.modules.get(str(getattr(route.endpoint, "__module__", "")))
    doc = (module.__doc__ or "") if module else ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _parameters(served: Served, op: Op) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": _param_schema(convertor)}
              for name, convertor in served.route.param_convertors.items()]
    for query in op.query:
        param: dict[str, Any] = {"name": query.name, "in": query.where,
                                 "required": query.required, "description": query.description,
                                 "schema": TypeAdapter(query.type).json_schema()}
        params.append(param)
    return params


def _raw_responses(op: Op, key: tuple[str, str], schemas: _Schemas) -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    if op.raw == "prometheus":
        return {"200": {"description": "Prometheus text format",
                        "content": {"text/plain": text}}}
    if op.raw == "html":
        return {"200": {"description": "an HTML page", "content": {"text/html": text}}}
    if op.raw == "openapi":
        return {"200": {"description": "OpenAPI 3.1", "content": {
            "application/json": {"schema": {"type": "object"}}}}}
    if op.text_reply:
        return {"200": {"description": "the broker's own reply format",
                        "content": {"text/plain": {"schema": {"enum": list(op.text_reply)}}}}}
    reply = schemas[(key, "hook-reply")]
    content: dict[str, Any] = {}
    if op.go_auth:
        # mode=status: the envelope; mode=json: go-auth's object; mode=text: "ok" or "error".
        reply = {"anyOf": [_envelope(schemas["go-auth-status"], schemas.components), reply]}
        content["text/plain"] = {"schema": {"enum": ["ok", "error"]}}
    return {"200": {"description": "the broker's own reply format",
                    "content": {"application/json": {"schema": reply}, **content}}}


def _request_body(op: Op, key: tuple[str, str], schemas: _Schemas) -> dict[str, Any] | None:
    if op.body is not None:
        return {"required": True,
                "content": {"application/json": {"schema": schemas[(key, "body")]}}}
    if not op.hook_bodies:
        return None
    bodies = [schemas[(key, f"hook-body-{i}")] for i in range(len(op.hook_bodies))]
    schema = bodies[0] if len(bodies) == 1 else {"anyOf": bodies}
    form = "application/x-www-form-urlencoded"
    content = ({form: {"schema": schema}} if op.text_reply
               else {"application/json": {"schema": schema}})
    if op.go_auth:
        content[form] = {"schema": schema}
    return {"required": True, "content": content}


def _operation(served: Served, op: Op, schemas: _Schemas, op_id: str) -> dict[str, Any]:
    key = (served.method, served.path)
    error_ref = schemas["error"]
    if op.raw is None:
        ok = _envelope(schemas[(key, "data")], schemas.components)
        names = {200: "OK", 201: "Created"}
        responses = {str(status): {"description": names.get(status, "OK"),
                                   "content": {"application/json": {"schema": ok}}}
                     for status in op.statuses}
    else:
        responses = _raw_responses(op, key, schemas)
    responses.update(_error_responses(op, error_ref))
    operation: dict[str, Any] = {
        "operationId": op_id, "summary": op.summary, "description": _AUTH_TEXT[op.auth],
        "tags": [_tag(served.route)], "security": _SECURITY[op.auth],
        "parameters": _parameters(served, op), "responses": responses,
    }
    body = _request_body(op, key, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _operation_ids(served: Sequence[Served]) -> dict[tuple[str, str], str]:
    """`{tag}_{endpoint}`; where one endpoint serves several routes, with path and method."""
    names = {(s.method, s.path): f"{_tag(s.route)}_{s.route.name}" for s in served}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    for s in served:
        key = (s.method, s.path)
        if counts[names[key]] > 1:
            tail = re.sub(r"\W+", "_", openapi_path(s.path).rsplit("/", 1)[-1]).strip("_")
            names[key] = f"{names[key]}_{tail}_{s.method.lower()}"
    assert len(set(names.values())) == len(names)  # noqa: S101  # a bug here, not input
    return names


def build_document(routes: Iterable[BaseRoute], *, version: str,
                   table: dict[tuple[str, str], Op] = OPERATIONS) -> dict[str, Any]:
    served = list(served_operations(routes))
    check_table(served, table)
    schemas = _Schemas(table)
    ids = _operation_ids(served)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    for s in served:
        key = (s.method, s.path)
        paths.setdefault(openapi_path(s.path), {})[s.method.lower()] = _operation(
            s, table[key], schemas, ids[key])
        tags.setdefault(_tag(s.route), _tag_description(s.route))
    return {
        "openapi": "3.1.0",
        "info": {"title": "mqim HTTP API", "version": version, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "tags": [{"name": name, "description": text} for name, text in tags.items()],
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": _SCHEMES},
    }

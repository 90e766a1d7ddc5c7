"""The JSON envelope of docs/design.md section 5, and the one place errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from contract.errors import (
    AccountBannedError,
    AuthError,
    ConflictError,
    ForbiddenError,
    InternalError,
    MailFailedError,
    MqimError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
)
from contract.http import ErrorEnvelope, OkEnvelope
from models.db import refused_value

logger = logging.getLogger(__name__)

# Most specific first: the first matching class gives the status.
_STATUS: list[tuple[type[MqimError], int]] = [
    (AccountBannedError, 403),
    (AuthError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (RateLimitedError, 429),
    (PayloadTooLargeError, 413),
    (InternalError, 500),
    (MailFailedError, 502),
    (MqimError, 400),
]
_HTTP_CODES = {404: (1005, "not_found"), 405: (1001, "method_not_allowed")}


def ok(data: Any = None, status: int = 200) -> JSONResponse:
    """The success envelope around `data`: contract shapes (pydantic models, lists of them) are
    serialised as the contract says, aliases included."""
    envelope = OkEnvelope(data=to_jsonable_python(data, by_alias=True))
    return JSONResponse(envelope.model_dump(), status_code=status)


def error_response(status: int, number: int, error: str, msg: str,
                   retry_after: int | None = None) -> JSONResponse:
    envelope = ErrorEnvelope(code=number, msg=msg, error=error, retry_after=retry_after)
    return JSONResponse(envelope.model_dump(), status_code=status)


def status_of(error: type[MqimError]) -> int:
    """The HTTP status of an error class: the first matching row of _STATUS."""
    return next(code for cls, code in _STATUS if issubclass(error, cls))


async def handle_mqim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MqimError)  # noqa: S101  # registered for MqimError only
    status = status_of(type(exc))
    if isinstance(exc, RateLimitedError):
        response = error_response(status, exc.number, exc.code.value, exc.msg,
                                  retry_after=exc.retry_after)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = error_response(status, exc.number, exc.code.value, exc.msg)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101  # registered for HTTPException only
    number, error = _HTTP_CODES.get(exc.status_code, (1001, "bad_request"))
    return error_response(exc.status_code, number, error, str(exc.detail))


async def handle_refused_value(request: Request, exc: Exception) -> Response:
    """A value the ORM refused (models.db.REFUSED_VALUE): the client's error, not the server's."""
    refusal = refused_value(exc)
    if refusal is None:
        return await handle_unexpected(request, exc)
    return await handle_mqim_error(request, refusal)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, 5000, "internal_error", "internal server error")

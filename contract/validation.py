"""Turning a pydantic validation failure into one readable InvalidParameterError (1001), the same
for HTTP bodies, broker hook bodies and MQTT commands."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contract.errors import InvalidParameterError

T = TypeVar("T", bound=BaseModel)


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """`field.path: problem; ...` for the first `limit` problems."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        for e in exc.errors()[:limit]
    )


def validate(model: type[T], data: Any) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidParameterError(describe_validation_error(exc)) from exc

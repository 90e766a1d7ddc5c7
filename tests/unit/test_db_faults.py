"""Which failures are transient, the database connection's or a transaction rolled back for
another's sake (retry the batch), and which a statement's (answer the command with an error):
the bridge's per-command isolation rests on this split."""

from __future__ import annotations

import asyncpg
import pytest
from tortoise.exceptions import IntegrityError, OperationalError

from models.db import is_transient_fault


def _raised_from(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize("exc", [
    ConnectionResetError("reset by peer"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    _raised_from(OperationalError("wrapped by tortoise"), asyncpg.InterfaceError("closed")),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    _raised_from(OperationalError("wrapped by tortoise"),
                 asyncpg.exceptions.SerializationError("could not serialize access")),
], ids=lambda e: type(e).__name__)
def test_connection_failures_and_rolled_back_transactions_are_transient(exc: Exception) -> None:
    assert is_transient_fault(exc)


@pytest.mark.parametrize("exc", [
    ValueError("bad value"),
    _raised_from(OperationalError("value too long"),
                 asyncpg.exceptions.StringDataRightTruncationError("value too long")),
    IntegrityError("duplicate key"),
    RecursionError("too deep"),
], ids=lambda e: type(e).__name__)
def test_statement_failures_are_not(exc: Exception) -> None:
    assert not is_transient_fault(exc)

"""Raw SQL in both of mqim's dialects, for the statements the ORM would make too slow (the
bridge's batch write in models/append.py, the thread list in models/threadlist.py): only
placeholders and fixed column expressions are formatted into the text; values are always
parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError

# Run one statement with its parameters; its rows.
Fetch = Callable[[str, list[Any]], Awaitable[Sequence[Any]]]


@asynccontextmanager
async def batch_connection(conn: BaseDBAsyncClient) -> AsyncIterator[Fetch]:
    """Several statements on one connection: on PostgreSQL one pooled connection for all of
    them (the ORM acquires and releases one per statement), its errors translated as the ORM
    translates them (a unique violation is an IntegrityError); on SQLite the ORM's own path."""
    if conn.capabilities.dialect != "postgres":
        async def through_orm(sql: str, params: list[Any]) -> Sequence[Any]:
            return (await conn.execute_query(sql, params))[1]
        yield through_orm
        return
    async with conn.acquire_connection() as raw:
        async def fetch(sql: str, params: list[Any]) -> Sequence[Any]:
            try:
                rows: Sequence[Any] = await raw.fetch(sql, *params)
            except (asyncpg.SyntaxOrAccessError, asyncpg.exceptions.DataError) as exc:
                raise OperationalError(exc) from exc
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise IntegrityError(exc) from exc
            return rows
        yield fetch


class SqlDialect:
    """The few places SQLite and PostgreSQL differ in mqim's raw SQL, collecting the statement's
    parameters as it is built (`$n` on PostgreSQL, `?` on SQLite)."""

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"
        self.params: list[Any] = []

    def values_in(self, column: str, values: Sequence[str]) -> str:
        if self.postgres:
            # A JSON list, not a text[]: asyncpg tests every element of an array parameter
            # against collections.abc in Python. ARRAY(...) is an init plan, so the column's
            # index is still probed for each value.
            self.params.append(orjson.dumps(list(values)).decode())
            return (f"{column} = ANY(ARRAY(SELECT json_array_elements_text("
                    f"${len(self.params)}::json)))")
        self.params.extend(values)
        return f"{column} IN ({', '.join('?' * len(values))})"

    def pairs_join(self, table: str, first: str, second: str,
                   pairs: Sequence[tuple[str, str]]) -> str:
        """`table` rows (`"name alias"`) matching exact pairs, driven from the pairs: one index
        probe each, whatever the table's size (two IN lists would probe their cross product, and
        SQLite scans the table for a row-value IN)."""
        if self.postgres:
            self.params.append(orjson.dumps([{"a": a, "b": b} for a, b in pairs]).decode())
            n = len(self.params)
            # LIMIT 1 (each pair is unique) keeps PostgreSQL from flattening the lateral
            # subquery into a join it might run as a hash join over the whole table; a generic
            # plan made while the table was small would keep doing that.
            alias = table.split()[-1]
            return (f"json_to_recordset(${n}::json) AS p(a text, b text) CROSS JOIN LATERAL "  # noqa: S608
                    f"(SELECT * FROM {table} WHERE {first} = p.a AND {second} = p.b LIMIT 1) "
                    f"AS {alias}")
        for pair in pairs:
            self.params.extend(pair)
        # CROSS JOIN makes SQLite loop over the pairs outside.
        return (f"(VALUES {', '.join(['(?, ?)'] * len(pairs))}) AS p "
                f"CROSS JOIN {table} ON {first} = p.column1 AND {second} = p.column2")

    def numbered(self, n: int) -> str:
        """The placeholder of the n-th parameter, for statements that name each one once and
        use it in several places (`$n` / `?n`)."""
        return f"${n}" if self.postgres else f"?{n}"

    def mentions(self, column: str, user: str) -> str:
        """The JSON array `column` (a message's mentions) holds the string `user` (a
        placeholder)."""
        if self.postgres:
            return f"{column} ? {user}"  # jsonb: the array holds that string
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {user})"  # noqa: S608

    def epoch(self, column: str) -> str:
        """A timestamp column as text of its epoch seconds (NULL stays NULL)."""
        if self.postgres:
            return f"CAST(EXTRACT(EPOCH FROM {column}) AS TEXT)"
        return f"CAST(strftime('%s', {column}) AS TEXT)"

    def direct_user(self, column: str, part: int) -> str:
        if self.postgres:
            return f"split_part({column}, ':', {part})"
        if part == 1:
            return f"substr({column}, 1, instr({column}, ':') - 1)"
        return f"substr({column}, instr({column}, ':') + 1)"

"""Raw SQL in both of mqim's dialects, for the statements the ORM would make too slow (the
bridge's batch write in models/append.py, the thread list in models/threadlist.py): only
placeholders and fixed column expressions are formatted into the text; values are always
parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


class SqlDialect:
    """The few places SQLite and PostgreSQL differ in mqim's raw SQL, collecting the statement's
    parameters as it is built (`$n` on PostgreSQL, `?` on SQLite)."""

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"
        self.params: list[Any] = []

    def values_in(self, column: str, values: Sequence[str]) -> str:
        if self.postgres:
            self.params.append(list(values))
            return f"{column} = ANY(${len(self.params)}::text[])"
        self.params.extend(values)
        return f"{column} IN ({', '.join('?' * len(values))})"

    def pairs_join(self, table: str, first: str, second: str,
                   pairs: Sequence[tuple[str, str]]) -> str:
        """`table` rows (`"name alias"`) matching exact pairs, driven from the pairs: one index
        probe each, whatever the table's size (two IN lists would probe their cross product, and
        SQLite scans the table for a row-value IN)."""
        if self.postgres:
            self.params += [[a for a, _ in pairs], [b for _, b in pairs]]
            n = len(self.params)
            # LIMIT 1 (each pair is unique) keeps PostgreSQL from flattening the lateral
            # subquery into a join it might run as a hash join over the whole table; a generic
            # plan made while the table was small would keep doing that.
            alias = table.split()[-1]
            return (f"unnest(${n - 1}::text[], ${n}::text[]) AS p(a, b) CROSS JOIN LATERAL "  # noqa: S608
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

"""Migration operations of mqim's own (models/migrations/ import them).

`AlterFieldInStateOnly`: a change the database cannot see, such as another choice of an enum
stored in a varchar. Tortoise's AlterField rebuilds the table on SQLite (copy, drop, rename),
and dropping a table that other tables reference with ON DELETE CASCADE deletes their rows: an
upgrade of a thread's `kind` choices emptied every thread's messages. This records the new field
in the migration state only, so the next `makemigrations` sees nothing to do, and leaves the
schema alone.
"""

from __future__ import annotations

from typing import Any

from tortoise.migrations import operations as ops


class AlterFieldInStateOnly(ops.AlterField):
    def describe(self) -> str:
        return f"Record field {self.name} of {self.model_name} (no schema change)"

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None

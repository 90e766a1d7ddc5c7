"""Message search that spans words on PostgreSQL (docs/performance.md, "Message search on a large
thread"). pg_trgm makes trigrams of words only, so a query across a space ("o wo") matched the
trigrams of every word it touches and the index returned thousands of candidates to recheck. The
new GIN index is on `translate(body, ' ', 'ǂ')`: U+01C2 is a letter to pg_trgm, so trigrams run
across spaces, and models/msgsearch.py queries the same expression (its WORD_JOIN). The old
index goes: while it exists the planner prefers it. A `(created_at, id)` index serves the
global search's newest-first walk. SQLite (FTS5 trigram, migration 0006) needs nothing.

Reversible.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES_UP = """
DROP INDEX IF EXISTS message_body_trgm;
CREATE INDEX IF NOT EXISTS message_body_words_trgm ON message
    USING gin (translate(body, ' ', 'ǂ') gin_trgm_ops) WHERE kind = 'message';
CREATE INDEX IF NOT EXISTS message_created_at_id ON message (created_at, id);
"""
POSTGRES_DOWN = """
DROP INDEX IF EXISTS message_created_at_id;
DROP INDEX IF EXISTS message_body_words_trgm;
CREATE INDEX IF NOT EXISTS message_body_trgm ON message
    USING gin (body gin_trgm_ops) WHERE kind = 'message';
"""


async def _run(schema_editor: object, postgres: str) -> None:
    if getattr(schema_editor, "DIALECT", None) != "postgres":
        return
    if getattr(schema_editor, "collect_sql", False):
        schema_editor.collected_sql.append(postgres)  # type: ignore[attr-defined]
        return
    await schema_editor.client.execute_script(postgres)  # type: ignore[attr-defined]


async def _up(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, POSTGRES_UP)


async def _down(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [('models', '0007_rich_messages')]

    initial = False

    operations = [ops.RunPython(_up, _down)]

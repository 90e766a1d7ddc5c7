"""Message search (docs/design.md section 9): a substring index over timeline bodies, any script.

- SQLite: an FTS5 table `message_fts` with the trigram tokenizer, external content on `message`
  (keyed by its implicit rowid: the primary key is a varchar, so the table has one), kept in sync
  by AFTER INSERT/UPDATE/DELETE triggers and filled from the rows already there. Every row is
  indexed (events too: their bodies are short), so `INSERT INTO message_fts(message_fts)
  VALUES('rebuild')` restores it whenever needed, e.g. after a VACUUM, which may renumber the
  rowids of a table without an INTEGER PRIMARY KEY.
- PostgreSQL: the `pg_trgm` extension and a GIN trigram index on the bodies of messages
  (`kind = 'message'`), so the bridge's raw INSERTs (models/append.py) need nothing more.
  Migration 0008 replaces that index with one whose trigrams span words.

Reversible.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE_UP = """
CREATE VIRTUAL TABLE message_fts USING fts5(
    body, content='message', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN
    INSERT INTO message_fts(rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER message_fts_au AFTER UPDATE OF body ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO message_fts(rowid, body) VALUES (new.rowid, new.body);
END;
INSERT INTO message_fts(message_fts) VALUES ('rebuild');
"""
SQLITE_DOWN = """
DROP TRIGGER IF EXISTS message_fts_au;
DROP TRIGGER IF EXISTS message_fts_ad;
DROP TRIGGER IF EXISTS message_fts_ai;
DROP TABLE IF EXISTS message_fts;
"""
POSTGRES_UP = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS message_body_trgm ON message
    USING gin (body gin_trgm_ops) WHERE kind = 'message';
"""
# The extension stays: other databases objects may have come to use it.
POSTGRES_DOWN = "DROP INDEX IF EXISTS message_body_trgm;"


async def _run(schema_editor: object, sqlite: str, postgres: str) -> None:
    sql = postgres if getattr(schema_editor, "DIALECT", None) == "postgres" else sqlite
    if getattr(schema_editor, "collect_sql", False):
        schema_editor.collected_sql.append(sql)  # type: ignore[attr-defined]
        return
    await schema_editor.client.execute_script(sql)  # type: ignore[attr-defined]


async def _up(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, SQLITE_UP, POSTGRES_UP)


async def _down(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, SQLITE_DOWN, POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_uploads')]

    initial = False

    operations = [ops.RunPython(_up, _down)]

"""Rich messages (docs/messages.md): typed content, forwards, edits (message_version), unsend
(`deleted`), reactions, the files messages reference (message_file), polls; action entries
(`kind` action) in the timeline. Reversible."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.message import EntryKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index
from models.migration_ops import AlterFieldInStateOnly

# 0006's search triggers on SQLite: undoing this migration's fields rebuilds the message table,
# which drops them, so the step back makes them again and rebuilds the index.
SQLITE_SEARCH_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS message_fts_ai AFTER INSERT ON message BEGIN
    INSERT INTO message_fts(rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER IF NOT EXISTS message_fts_ad AFTER DELETE ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER IF NOT EXISTS message_fts_au AFTER UPDATE OF body ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO message_fts(rowid, body) VALUES (new.rowid, new.body);
END;
INSERT INTO message_fts(message_fts) VALUES ('rebuild');
"""


async def _nothing(apps: object, schema_editor: object) -> None:
    return None


async def _restore_search_triggers(apps: object, schema_editor: object) -> None:
    if getattr(schema_editor, "DIALECT", None) == "postgres":
        return
    if getattr(schema_editor, "collect_sql", False):
        schema_editor.collected_sql.append(SQLITE_SEARCH_TRIGGERS)  # type: ignore[attr-defined]
        return
    await schema_editor.client.execute_script(SQLITE_SEARCH_TRIGGERS)  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [('models', '0006_message_search')]

    initial = False

    operations = [
        # First, so that its step back runs last, after the message table was rebuilt.
        ops.RunPython(_nothing, _restore_search_triggers),
        ops.CreateModel(
            name='MessageFile',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='files', on_delete=OnDelete.CASCADE)),
                ('upload', fields.ForeignKeyField('models.Upload', source_field='upload_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('thread_id', fields.CharField(max_length=32)),
                ('seq', fields.BigIntField()),
            ],
            options={'table': 'message_file', 'app': 'models', 'unique_together': (('message', 'upload'),), 'indexes': [Index(fields=['upload_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MessageVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('body', fields.TextField(null=True, unique=False)),
                ('content', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('entry_seq', fields.BigIntField(null=True)),
            ],
            options={'table': 'message_version', 'app': 'models', 'unique_together': (('message', 'version'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Poll',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='polls', on_delete=OnDelete.CASCADE)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='polls', on_delete=OnDelete.CASCADE)),
                ('creator_id', fields.CharField(max_length=64)),
                ('question', fields.CharField(max_length=300)),
                ('multiple', fields.BooleanField(default=False)),
                ('closes_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'poll', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PollOption',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('poll', fields.ForeignKeyField('models.Poll', source_field='poll_id', db_constraint=True, to_field='id', related_name='options', on_delete=OnDelete.CASCADE)),
                ('option_id', fields.IntField()),
                ('text', fields.CharField(max_length=100)),
            ],
            options={'table': 'poll_option', 'app': 'models', 'unique_together': (('poll', 'option_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PollVote',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('poll', fields.ForeignKeyField('models.Poll', source_field='poll_id', db_constraint=True, to_field='id', related_name='votes', on_delete=OnDelete.CASCADE)),
                ('option_id', fields.IntField()),
                ('user_id', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'poll_vote', 'app': 'models', 'unique_together': (('poll', 'option_id', 'user_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reaction',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='reactions', on_delete=OnDelete.CASCADE)),
                ('thread_id', fields.CharField(max_length=32)),
                ('user_id', fields.CharField(max_length=64)),
                ('emoji', fields.CharField(max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'message_reaction', 'app': 'models', 'unique_together': (('message', 'user_id', 'emoji'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='content',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Message',
            name='deleted',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Message',
            name='edited_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Message',
            name='forwarded_from',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        AlterFieldInStateOnly(  # the new choice `action` changes no column
            model_name='Message',
            name='kind',
            field=fields.CharEnumField(description='MESSAGE: message\nEVENT: event\nACTION: action', enum_type=EntryKind, max_length=8),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['thread_id', 'reply_to']),
        ),
    ]

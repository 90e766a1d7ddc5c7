"""A friend-group member references the friendship row (owner, friend) instead of the friend's
user row, ON DELETE CASCADE: ending a friendship takes each user out of the other's groups in the
database.

The table is rebuilt (SQLite cannot add a NOT NULL reference to a table that has rows): its rows
are kept aside in `friend_group_member_0003`, each mapped to the friendship of (group owner,
member), then put back under their old ids. A member whose friendship is gone (none should be:
unfriending always emptied the groups) is dropped. The same SQL runs on SQLite and PostgreSQL;
only PostgreSQL has an id sequence to move past the restored ids. Reversible.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

STASH = "friend_group_member_0003"


async def _sync_id_sequence(apps: object, schema_editor: object) -> None:
    """After rows were put back under their ids, the next generated id must follow them."""
    if getattr(schema_editor, "DIALECT", None) != "postgres":
        return
    sql = ("SELECT setval(pg_get_serial_sequence('friend_group_member', 'id'), "
           "COALESCE((SELECT MAX(id) FROM friend_group_member), 0) + 1, false)")
    if getattr(schema_editor, "collect_sql", False):
        schema_editor.collected_sql.append(sql)  # type: ignore[attr-defined]
        return
    await schema_editor.client.execute_script(sql)  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [('models', '0002_social_and_accounts')]

    initial = False

    operations = [
        ops.RunPython(_sync_id_sequence, _sync_id_sequence),
        ops.RunSQL(
            [f"CREATE TABLE {STASH} AS"
             " SELECT m.id AS id, m.group_id AS group_id, f.id AS friendship_id,"
             " m.created_at AS created_at"
             " FROM friend_group_member m"
             " JOIN friend_group g ON g.id = m.group_id"
             " JOIN friendship f ON f.user_id = g.owner_id AND f.friend_id = m.friend_id"],
            reverse_sql=[
                "INSERT INTO friend_group_member (id, group_id, friend_id, created_at)"
                f" SELECT id, group_id, friend_id, created_at FROM {STASH}",
                f"DROP TABLE {STASH}",
            ],
        ),
        ops.DeleteModel(name='FriendGroupMember'),
        ops.CreateModel(
            name='FriendGroupMember',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.FriendGroup', source_field='group_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('friendship', fields.ForeignKeyField('models.Friendship', source_field='friendship_id', db_index=True, db_constraint=True, to_field='id', related_name='group_members', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'friend_group_member', 'app': 'models', 'unique_together': (('group', 'friendship'),), 'pk_attr': 'id', 'table_description': 'A friend in a group of its owner, by the friendship row (owner, friend).'},
            bases=['Model'],
        ),
        ops.RunSQL(
            [
                "INSERT INTO friend_group_member (id, group_id, friendship_id, created_at)"
                f" SELECT id, group_id, friendship_id, created_at FROM {STASH}",
                f"DROP TABLE {STASH}",
            ],
            reverse_sql=[
                f"CREATE TABLE {STASH} AS"
                " SELECT m.id AS id, m.group_id AS group_id, f.friend_id AS friend_id,"
                " m.created_at AS created_at"
                " FROM friend_group_member m JOIN friendship f ON f.id = m.friendship_id"
            ],
        ),
        ops.RunPython(_sync_id_sequence, _sync_id_sequence),
    ]

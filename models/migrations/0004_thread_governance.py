"""Thread governance (docs/threads.md): how a thread looks, its settings and status, rooms'
capacity and place; each member's join seq, nickname, mute and own settings; former members with
their join and leave seqs; invitations and announcements. Existing members keep join_seq 1, so
they read the whole timeline as before."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.invitation import InvitationStatus
from models.thread import HistoryVisibility, MemberStatus, RecvOpt, ThreadKind, ThreadStatus, Visibility
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from models.migration_ops import AlterFieldInStateOnly

class Migration(migrations.Migration):
    dependencies = [('models', '0003_group_members_reference_friendships')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Announcement',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='announcements', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('content', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'thread_announcement', 'app': 'models', 'indexes': [Index(fields=['thread_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invitation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.CASCADE)),
                ('inviter', fields.ForeignKeyField('models.User', source_field='inviter_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('decided_by', fields.ForeignKeyField('models.User', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('status', fields.CharEnumField(default=InvitationStatus.PENDING, description='PENDING: pending\nAPPROVED: approved\nREJECTED: rejected', enum_type=InvitationStatus, max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'thread_invitation', 'app': 'models', 'indexes': [Index(fields=['thread_id', 'status']), Index(fields=['user_id'])], 'pk_attr': 'id', 'table_description': 'A user waiting to be let into a thread: invited by a member (`inviter`), or asking to'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PastMember',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='past_members', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='past_memberships', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(description='ACTIVE: active\nLEFT: left\nREMOVED: removed', enum_type=MemberStatus, max_length=8)),
                ('join_seq', fields.BigIntField()),
                ('leave_seq', fields.BigIntField()),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'thread_member_past', 'app': 'models', 'unique_together': (('thread', 'user'),), 'indexes': [Index(fields=['user_id'])], 'pk_attr': 'id', 'table_description': 'Someone who left or was removed: they keep read access to entries from `join_seq` up to'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='archived',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Member',
            name='delivered_seq',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Member',
            name='is_request',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Member',
            name='join_seq',
            field=fields.BigIntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Member',
            name='marked_unread',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Member',
            name='muted_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='nickname',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Member',
            name='notify_muted_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='pinned',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Member',
            name='recv_msg_opt',
            field=fields.SmallIntField(default=RecvOpt.NORMAL, db_default=RecvOpt.NORMAL.value),
        ),
        # The new choice `room` changes no column: a real AlterField would rebuild `thread` on
        # SQLite, and the rebuild's DROP cascades to every message and membership.
        AlterFieldInStateOnly(
            model_name='Thread',
            name='kind',
            field=fields.CharEnumField(description='DIRECT: direct\nGROUP: group\nROOM: room', enum_type=ThreadKind, max_length=8),
        ),
        ops.AddField(
            model_name='Thread',
            name='admins_only_send',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Thread',
            name='capacity',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Thread',
            name='color',
            field=fields.CharField(null=True, max_length=7),
        ),
        ops.AddField(
            model_name='Thread',
            name='description',
            field=fields.CharField(null=True, max_length=1000),
        ),
        ops.AddField(
            model_name='Thread',
            name='dissolved_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Thread',
            name='emoji',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='Thread',
            name='history_visibility',
            field=fields.CharEnumField(default=HistoryVisibility.JOINED, db_default=HistoryVisibility.JOINED.value, description='JOINED: joined\nSHARED: shared', enum_type=HistoryVisibility, max_length=8),
        ),
        ops.AddField(
            model_name='Thread',
            name='image_url',
            field=fields.CharField(null=True, max_length=1024),
        ),
        ops.AddField(
            model_name='Thread',
            name='join_approval',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Thread',
            name='lat',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='Thread',
            name='lng',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='Thread',
            name='status',
            field=fields.CharEnumField(default=ThreadStatus.ACTIVE, db_default=ThreadStatus.ACTIVE.value, description='ACTIVE: active\nDISSOLVED: dissolved', enum_type=ThreadStatus, max_length=10),
        ),
        ops.AddField(
            model_name='Thread',
            name='visibility',
            field=fields.CharEnumField(default=Visibility.PRIVATE, db_default=Visibility.PRIVATE.value, description='PRIVATE: private\nPUBLIC: public', enum_type=Visibility, max_length=8),
        ),
        ops.AddIndex(
            model_name='Thread',
            index=Index(fields=['kind', 'lat']),
        ),
    ]

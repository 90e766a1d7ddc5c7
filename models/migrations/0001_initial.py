from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.aclrule import RuleAccess
from models.message import EntryKind
from models.thread import Role, ThreadKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AclRule',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('topic', fields.CharField(max_length=256)),
                ('access', fields.CharEnumField(description='READ: read\nWRITE: write\nREADWRITE: readwrite', enum_type=RuleAccess, max_length=9)),
                ('user_id', fields.CharField(null=True, db_index=True, max_length=64)),
                ('created_by', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'acl_rule', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('email', fields.CharField(null=True, unique=True, max_length=254)),
                ('phone', fields.CharField(null=True, unique=True, max_length=32)),
                ('name', fields.CharField(max_length=20)),
                ('password_hash', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('is_admin', fields.BooleanField(default=False)),
                ('banned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'user_account', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoginSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('platform', fields.CharField(max_length=16)),
                ('refresh_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('end_reason', fields.CharField(null=True, max_length=32)),
            ],
            options={'table': 'login_session', 'app': 'models', 'indexes': [Index(fields=['user_id', 'platform'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Thread',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('kind', fields.CharEnumField(description='DIRECT: direct\nGROUP: group', enum_type=ThreadKind, max_length=8)),
                ('name', fields.CharField(null=True, max_length=100)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('direct_key', fields.CharField(null=True, unique=True, max_length=130)),
                ('last_seq', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_activity_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'thread', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Member',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharEnumField(default=Role.MEMBER, description='OWNER: owner\nADMIN: admin\nMEMBER: member', enum_type=Role, max_length=8)),
                ('read_seq', fields.BigIntField(default=0)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'thread_member', 'app': 'models', 'unique_together': (('thread', 'user'),), 'indexes': [Index(fields=['user_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('seq', fields.BigIntField()),
                ('kind', fields.CharEnumField(description='MESSAGE: message\nEVENT: event', enum_type=EntryKind, max_length=8)),
                ('sender', fields.ForeignKeyField('models.User', source_field='sender_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('client_msg_id', fields.CharField(null=True, max_length=64)),
                ('type', fields.CharField(max_length=32)),
                ('body', fields.TextField(null=True, unique=False)),
                ('reply_to', fields.CharField(null=True, max_length=32)),
                ('mentions', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attachments', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('data', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'message', 'app': 'models', 'unique_together': (('thread', 'seq'), ('sender', 'client_msg_id')), 'pk_attr': 'id', 'table_description': 'One timeline entry: a message (kind=message) or a thread event (kind=event).'},
            bases=['Model'],
        ),
    ]

"""Reaching users and programs (docs/push.md, docs/webhooks.md, docs/bots.md): the reach queue,
push targets, webhooks and their delivery outbox, bot accounts and their tokens. New tables
only, so it is reversible on SQLite without rebuilding a table. (Message.kind's choices gained
`action` in 0007 with no schema change: it is a varchar(8).)"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.push import PushKind
from models.webhook import DeliveryStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_message_search_words')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Bot',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', unique=True, db_constraint=True, to_field='id', related_name='bot', on_delete=OnDelete.CASCADE)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='bots_owned', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bot', 'app': 'models', 'indexes': [Index(fields=['owner_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BotToken',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bot', fields.ForeignKeyField('models.User', source_field='bot_id', db_constraint=True, to_field='id', related_name='bot_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'bot_token', 'app': 'models', 'indexes': [Index(fields=['bot_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushTarget',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='push_targets', on_delete=OnDelete.CASCADE)),
                ('session', fields.ForeignKeyField('models.LoginSession', source_field='session_id', db_constraint=True, to_field='id', related_name='push_targets', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='WEBPUSH: webpush\nUNIFIEDPUSH: unifiedpush\nGATEWAY: gateway', enum_type=PushKind, max_length=16)),
                ('endpoint', fields.CharField(max_length=2048)),
                ('keys', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_success_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('failures', fields.IntField(default=0)),
            ],
            options={'table': 'push_target', 'app': 'models', 'unique_together': (('session', 'endpoint'),), 'indexes': [Index(fields=['user_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReachQueue',
            fields=[
                ('thread_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('seq', fields.BigIntField()),
                ('hook_seq', fields.BigIntField()),
                ('push_seq', fields.BigIntField()),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('waiting_since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reach_queue', 'app': 'models', 'pk_attr': 'thread_id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Webhook',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='webhooks', on_delete=OnDelete.CASCADE)),
                ('bot_id', fields.CharField(null=True, max_length=64)),
                ('url', fields.CharField(max_length=2048)),
                ('secret', fields.CharField(max_length=128)),
                ('events', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhook', 'app': 'models', 'indexes': [Index(fields=['bot_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.Webhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('event_kind', fields.CharField(max_length=32)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharEnumField(default=DeliveryStatus.PENDING, description='PENDING: pending\nDELIVERED: delivered\nFAILED: failed', enum_type=DeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_delivery', 'app': 'models', 'indexes': [Index(fields=['webhook_id', 'status', 'id']), Index(fields=['status', 'next_attempt_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

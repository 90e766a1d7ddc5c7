"""Uploads (docs/design.md section 9): the `upload` table, one row per stored file (the bytes
live in the storage backend, under `storage_key`). Reversible."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0004_thread_governance')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('storage_key', fields.CharField(max_length=200)),
                ('name', fields.CharField(max_length=255)),
                ('size', fields.BigIntField()),
                ('content_type', fields.CharField(max_length=100)),
                ('width', fields.IntField(null=True)),
                ('height', fields.IntField(null=True)),
                ('sha256', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'upload', 'app': 'models', 'indexes': [Index(fields=['owner_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A file someone uploaded: stored under `storage_key` in the configured backend.'},
            bases=['Model'],
        ),
    ]

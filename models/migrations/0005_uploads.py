"""Uploads (docs/design.md section 9): being written."""

from tortoise import migrations


class Migration(migrations.Migration):
    dependencies = [('models', '0004_thread_governance')]

    initial = False

    operations: list[object] = []

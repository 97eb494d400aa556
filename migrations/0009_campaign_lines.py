from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_faults')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OrderLine',
            name='campaign',
            field=fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='campaign_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='campaign_kind',
            field=fields.CharField(null=True, max_length=20),
        ),
        ops.AddIndex(
            model_name='OrderLine',
            index=Index(fields=['campaign_kind', 'campaign_id']),
        ),
    ]

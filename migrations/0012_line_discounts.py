from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_coupons')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='discounts',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='discount',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='discounts',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='paid_total',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='OrderLine',
            name='points_discount',
            field=fields.IntField(default=0),
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.points_mall import PointsMallItemKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_live_wechat_goods')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PointsMallItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=64)),
                ('kind', fields.CharEnumField(description='COUPON: COUPON\nSKU: SKU', enum_type=PointsMallItemKind, max_length=8)),
                ('coupon', fields.ForeignKeyField('models.Coupon', source_field='coupon_id', null=True, db_constraint=True, to_field='id', related_name='mall_items', on_delete=OnDelete.RESTRICT)),
                ('sku', fields.ForeignKeyField('models.Sku', source_field='sku_id', null=True, db_constraint=True, to_field='id', related_name='mall_items', on_delete=OnDelete.RESTRICT)),
                ('points', fields.IntField()),
                ('cash', fields.IntField(default=0)),
                ('stock', fields.IntField()),
                ('per_member_limit', fields.IntField(default=1)),
                ('starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'points_mall_items', 'app': 'models', 'indexes': [Index(fields=['active', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsMallExchange',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.PointsMallItem', source_field='item_id', db_constraint=True, to_field='id', related_name='exchanges', on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='mall_exchanges', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField(null=True)),
                ('points', fields.IntField()),
                ('cash', fields.IntField(default=0)),
                ('order_id', fields.IntField(null=True)),
                ('member_coupon_id', fields.IntField(null=True)),
                ('returned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'points_mall_exchanges', 'app': 'models', 'unique_together': (('item', 'member', 'seq'),), 'indexes': [Index(fields=['member_id', 'id']), Index(fields=['order_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

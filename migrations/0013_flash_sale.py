from tortoise import migrations
from tortoise.migrations import operations as ops
from models.bargain import BargainActivityStatus, BargainStatus
from models.flash_sale import FlashSaleStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_line_discounts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BargainActivity',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='bargain_activities', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=60)),
                ('sku_id', fields.IntField()),
                ('product_id', fields.IntField()),
                ('start_price', fields.IntField()),
                ('floor_price', fields.IntField()),
                ('helpers_needed', fields.IntField()),
                ('hours_to_finish', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stock', fields.IntField()),
                ('sold', fields.IntField(default=0)),
                ('started_count', fields.IntField(default=0)),
                ('succeeded_count', fields.IntField(default=0)),
                ('status', fields.CharEnumField(default=BargainActivityStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nSTOPPED: STOPPED', enum_type=BargainActivityStatus, max_length=12)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bargain_activities', 'app': 'models', 'indexes': [Index(fields=['shop_id', 'status', 'ends_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Bargain',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('activity', fields.ForeignKeyField('models.BargainActivity', source_field='activity_id', db_constraint=True, to_field='id', related_name='bargains', on_delete=OnDelete.CASCADE)),
                ('member_id', fields.IntField()),
                ('current_price', fields.IntField()),
                ('cuts_done', fields.IntField(default=0)),
                ('status', fields.CharEnumField(default=BargainStatus.ONGOING, description='ONGOING: ONGOING\nSUCCEEDED: SUCCEEDED\nORDERED: ORDERED\nEXPIRED: EXPIRED', enum_type=BargainStatus, max_length=12)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('order_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bargains', 'app': 'models', 'indexes': [Index(fields=['activity_id', 'member_id']), Index(fields=['member_id', 'created_at']), Index(fields=['status', 'expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BargainHelp',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bargain', fields.ForeignKeyField('models.Bargain', source_field='bargain_id', db_constraint=True, to_field='id', related_name='helps', on_delete=OnDelete.CASCADE)),
                ('helper_id', fields.IntField()),
                ('amount', fields.IntField()),
                ('price_after', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bargain_helps', 'app': 'models', 'unique_together': (('bargain', 'helper_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BargainHelpDay',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('helper_id', fields.IntField()),
                ('day', fields.DateField()),
                ('count', fields.IntField(default=0)),
            ],
            options={'table': 'bargain_help_days', 'app': 'models', 'unique_together': (('helper_id', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FlashSale',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='flash_sales', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=60)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField()),
                ('status', fields.CharEnumField(default=FlashSaleStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nSTOPPED: STOPPED', enum_type=FlashSaleStatus, max_length=12)),
                ('stopped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'flash_sales', 'app': 'models', 'indexes': [Index(fields=['shop_id', 'status', 'ends_on'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FlashSaleSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='flash_sessions', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=32)),
                ('starts_minute', fields.SmallIntField()),
                ('ends_minute', fields.SmallIntField()),
                ('enabled', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'flash_sale_sessions', 'app': 'models', 'indexes': [Index(fields=['shop_id', 'enabled', 'starts_minute'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FlashSaleItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('flash_sale', fields.ForeignKeyField('models.FlashSale', source_field='flash_sale_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE)),
                ('session', fields.ForeignKeyField('models.FlashSaleSession', source_field='session_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.RESTRICT)),
                ('sku_id', fields.IntField()),
                ('product_id', fields.IntField()),
                ('flash_price', fields.IntField()),
                ('allotment', fields.IntField()),
                ('per_member_limit', fields.IntField()),
                ('sold', fields.IntField(default=0)),
                ('sort', fields.IntField(default=0)),
            ],
            options={'table': 'flash_sale_items', 'app': 'models', 'unique_together': (('flash_sale', 'session', 'sku_id'),), 'indexes': [Index(fields=['session_id', 'flash_sale_id']), Index(fields=['sku_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FlashSalePurchase',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.FlashSaleItem', source_field='item_id', db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.CASCADE)),
                ('member_id', fields.IntField()),
                ('quantity', fields.IntField(default=0)),
            ],
            options={'table': 'flash_sale_purchases', 'app': 'models', 'unique_together': (('item', 'member_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

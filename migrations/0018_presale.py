from tortoise import migrations
from tortoise.migrations import operations as ops
from models.payment import PaymentStage
from models.presale import PresaleStage
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0017_points_mall')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Presale',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='presales', on_delete=OnDelete.RESTRICT)),
                ('product_id', fields.IntField()),
                ('sku', fields.ForeignKeyField('models.Sku', source_field='sku_id', db_constraint=True, to_field='id', related_name='presales', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=60)),
                ('price', fields.IntField()),
                ('deposit', fields.IntField()),
                ('deposit_worth', fields.IntField()),
                ('per_member_limit', fields.IntField()),
                ('deposit_starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deposit_ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('balance_starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('balance_ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stopped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'presales', 'app': 'models', 'indexes': [Index(fields=['sku_id']), Index(fields=['balance_starts_at'])], 'pk_attr': 'id', 'table_description': 'What staff set up: per unit, the presale price, the deposit and what the deposit counts for (定金膨胀),'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PresaleOrder',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('presale', fields.ForeignKeyField('models.Presale', source_field='presale_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.RESTRICT)),
                ('order_id', fields.IntField(unique=True)),
                ('member_id', fields.IntField()),
                ('quantity', fields.IntField()),
                ('deposit', fields.IntField()),
                ('deposit_worth', fields.IntField()),
                ('balance', fields.IntField()),
                ('stage', fields.CharEnumField(default=PresaleStage.DEPOSIT_DUE, description='DEPOSIT_DUE: DEPOSIT_DUE\nDEPOSIT_PAID: DEPOSIT_PAID\nBALANCE_PAID: BALANCE_PAID\nFORFEITED: FORFEITED\nCANCELLED: CANCELLED', enum_type=PresaleStage, max_length=14)),
                ('deposit_payment_id', fields.IntField(null=True)),
                ('balance_payment_id', fields.IntField(null=True)),
                ('deposit_paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('balance_paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'presale_orders', 'app': 'models', 'indexes': [Index(fields=['presale_id', 'stage']), Index(fields=['stage', 'reminded_at']), Index(fields=['member_id', 'presale_id'])], 'pk_attr': 'id', 'table_description': 'An order bought through a presale: its two amounts and the stage it is in.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PresaleQuota',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('presale', fields.ForeignKeyField('models.Presale', source_field='presale_id', db_constraint=True, to_field='id', related_name='quotas', on_delete=OnDelete.CASCADE)),
                ('member_id', fields.IntField()),
                ('units', fields.IntField(default=0)),
            ],
            options={'table': 'presale_quotas', 'app': 'models', 'unique_together': (('presale', 'member_id'),), 'pk_attr': 'id', 'table_description': 'Units a member holds through a presale (ordered and not cancelled), against its per-member limit.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Payment',
            name='stage',
            field=fields.CharEnumField(default=PaymentStage.FULL, description='FULL: FULL\nDEPOSIT: DEPOSIT\nBALANCE: BALANCE', enum_type=PaymentStage, max_length=8),
        ),
    ]

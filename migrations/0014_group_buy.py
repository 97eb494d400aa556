from tortoise import migrations
from tortoise.migrations import operations as ops
from models.group_buy import GroupBuyStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_flash_sale')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GroupBuyRule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='group_buy_rules', on_delete=OnDelete.RESTRICT)),
                ('product_id', fields.IntField()),
                ('sku', fields.ForeignKeyField('models.Sku', source_field='sku_id', db_constraint=True, to_field='id', related_name='group_buy_rules', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=60)),
                ('group_price', fields.IntField()),
                ('group_size', fields.IntField()),
                ('hours_to_fill', fields.IntField()),
                ('per_member_limit', fields.IntField()),
                ('virtual_members', fields.IntField(default=0)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stopped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'group_buy_rules', 'app': 'models', 'indexes': [Index(fields=['sku_id']), Index(fields=['shop_id', 'ends_at'])], 'pk_attr': 'id', 'table_description': 'What staff set up: one SKU at a group price for groups of `group_size`, filled within `hours_to_fill`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GroupBuy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule', fields.ForeignKeyField('models.GroupBuyRule', source_field='rule_id', db_constraint=True, to_field='id', related_name='groups', on_delete=OnDelete.RESTRICT)),
                ('leader_member_id', fields.IntField()),
                ('status', fields.CharEnumField(default=GroupBuyStatus.OPENING, description='OPENING: OPENING\nOPEN: OPEN\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=GroupBuyStatus, max_length=12)),
                ('size', fields.IntField()),
                ('seats_taken', fields.IntField(default=1)),
                ('paid_count', fields.IntField(default=0)),
                ('virtual_count', fields.IntField(default=0)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('succeeded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'group_buys', 'app': 'models', 'indexes': [Index(fields=['status', 'expires_at']), Index(fields=['rule_id', 'status']), Index(fields=['status', 'settled_at'])], 'pk_attr': 'id', 'table_description': 'One group: its leader, its seats (taken by placed orders, `seats_taken`) and how many of them are paid.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GroupBuyQuota',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule', fields.ForeignKeyField('models.GroupBuyRule', source_field='rule_id', db_constraint=True, to_field='id', related_name='quotas', on_delete=OnDelete.CASCADE)),
                ('member_id', fields.IntField()),
                ('units', fields.IntField(default=0)),
            ],
            options={'table': 'group_buy_quotas', 'app': 'models', 'unique_together': (('rule', 'member_id'),), 'pk_attr': 'id', 'table_description': 'Units a member holds through a rule (placed and not cancelled), against its per-member limit.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GroupBuySeat',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.GroupBuy', source_field='group_id', db_constraint=True, to_field='id', related_name='seats', on_delete=OnDelete.CASCADE)),
                ('member_id', fields.IntField()),
                ('order_id', fields.IntField(unique=True)),
                ('quantity', fields.IntField()),
                ('leader', fields.BooleanField(default=False)),
                ('paid', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'group_buy_seats', 'app': 'models', 'unique_together': (('group', 'member_id'),), 'pk_attr': 'id', 'table_description': "A member's place in a group, held by their order, deleted when that order is cancelled unpaid."},
            bases=['Model'],
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.coupon import CouponKind, CouponScope, CouponSource, CouponStatus, HeldCouponStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_live')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Coupon',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=64)),
                ('description', fields.CharField(default='', max_length=200)),
                ('kind', fields.CharEnumField(description='CASH: CASH\nTHRESHOLD: THRESHOLD\nDISCOUNT: DISCOUNT', enum_type=CouponKind, max_length=10)),
                ('amount_off', fields.IntField(default=0)),
                ('discount_percent', fields.SmallIntField(default=100)),
                ('max_discount', fields.IntField(default=0)),
                ('min_amount', fields.IntField(default=0)),
                ('scope', fields.CharEnumField(default=CouponScope.ALL, description='ALL: ALL\nCATEGORIES: CATEGORIES\nPRODUCTS: PRODUCTS\nBRANDS: BRANDS', enum_type=CouponScope, max_length=12)),
                ('scope_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_days', fields.IntField(null=True)),
                ('claim_starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claim_ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('public', fields.BooleanField(default=True)),
                ('total_quantity', fields.IntField()),
                ('issued', fields.IntField(default=0)),
                ('used', fields.IntField(default=0)),
                ('per_member_limit', fields.IntField(default=1)),
                ('stackable', fields.BooleanField(default=False)),
                ('return_on_refund', fields.BooleanField(default=False)),
                ('status', fields.CharEnumField(default=CouponStatus.ACTIVE, description='ACTIVE: ACTIVE\nSTOPPED: STOPPED', enum_type=CouponStatus, max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'coupons', 'app': 'models', 'indexes': [Index(fields=['status', 'public', 'claim_ends_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CouponCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('coupon', fields.ForeignKeyField('models.Coupon', source_field='coupon_id', db_constraint=True, to_field='id', related_name='codes', on_delete=OnDelete.CASCADE)),
                ('code', fields.CharField(unique=True, max_length=20)),
                ('member_id', fields.IntField(null=True)),
                ('member_coupon_id', fields.IntField(null=True)),
                ('redeemed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'coupon_codes', 'app': 'models', 'indexes': [Index(fields=['coupon_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberCoupon',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('coupon', fields.ForeignKeyField('models.Coupon', source_field='coupon_id', db_constraint=True, to_field='id', related_name='held', on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='coupons', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField()),
                ('source', fields.CharEnumField(description='CENTER: CENTER\nISSUED: ISSUED\nCODE: CODE\nPOINTS_MALL: POINTS_MALL', enum_type=CouponSource, max_length=12)),
                ('status', fields.CharEnumField(default=HeldCouponStatus.UNUSED, description='UNUSED: UNUSED\nUSED: USED', enum_type=HeldCouponStatus, max_length=8)),
                ('valid_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('order_id', fields.IntField(null=True)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'member_coupons', 'app': 'models', 'unique_together': (('coupon', 'member', 'seq'),), 'indexes': [Index(fields=['member_id', 'status', 'valid_until']), Index(fields=['order_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.promotion import PromotionKind, PromotionStatus
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_presale')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Promotion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=60)),
                ('description', fields.CharField(default='', max_length=200)),
                ('kind', fields.CharEnumField(description='LIMITED_TIME: LIMITED_TIME\nTHRESHOLD: THRESHOLD\nMEMBER_DAY: MEMBER_DAY\nFIRST_ORDER: FIRST_ORDER', enum_type=PromotionKind, max_length=12)),
                ('status', fields.CharEnumField(default=PromotionStatus.DRAFT, description='DRAFT: DRAFT\nACTIVE: ACTIVE\nINACTIVE: INACTIVE', enum_type=PromotionStatus, max_length=10)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('conditions', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('actions', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('combines_with_promotions', fields.BooleanField(default=True)),
                ('combines_with_coupons', fields.BooleanField(default=True)),
                ('applies_to_campaign_lines', fields.BooleanField(default=False)),
                ('priority', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'promotions', 'app': 'models', 'indexes': [Index(fields=['status', 'starts_at']), Index(fields=['status', 'ends_at']), Index(fields=['kind', 'status'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

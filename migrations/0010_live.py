from tortoise import migrations
from tortoise.migrations import operations as ops
from models.content import Moderation
from models.live import LiveRoomStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_campaign_lines')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LiveRoom',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=60)),
                ('cover_url', fields.CharField(default='', max_length=500)),
                ('anchor_name', fields.CharField(max_length=30)),
                ('scheduled_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('scheduled_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=LiveRoomStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nLIVE: LIVE\nPAUSED: PAUSED\nENDED: ENDED', enum_type=LiveRoomStatus, max_length=10)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pinned_id', fields.IntField(null=True)),
                ('wechat_room_id', fields.IntField(null=True, unique=True)),
                ('wechat_status', fields.IntField(null=True)),
                ('wechat_synced_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'live_rooms', 'app': 'models', 'indexes': [Index(fields=['status', 'scheduled_start'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LiveComment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('room', fields.ForeignKeyField('models.LiveRoom', source_field='room_id', db_constraint=True, to_field='id', related_name='comments', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='live_comments', on_delete=OnDelete.CASCADE)),
                ('text', fields.CharField(max_length=200)),
                ('moderation', fields.CharEnumField(default=Moderation.PASSED, description='PENDING: PENDING\nPASSED: PASSED\nHELD: HELD\nREJECTED: REJECTED', enum_type=Moderation, max_length=10)),
                ('label', fields.IntField(default=0)),
                ('removed', fields.BooleanField(default=False)),
                ('removed_by', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'live_comments', 'app': 'models', 'indexes': [Index(fields=['room_id', 'id']), Index(fields=['moderation', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LiveMute',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('room', fields.ForeignKeyField('models.LiveRoom', source_field='room_id', db_constraint=True, to_field='id', related_name='mutes', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='live_mutes', on_delete=OnDelete.CASCADE)),
                ('until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('staff_id', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'live_mutes', 'app': 'models', 'unique_together': (('room_id', 'member_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LiveRoomProduct',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('room', fields.ForeignKeyField('models.LiveRoom', source_field='room_id', db_constraint=True, to_field='id', related_name='products', on_delete=OnDelete.CASCADE)),
                ('product_id', fields.IntField()),
                ('sku_id', fields.IntField()),
                ('live_price', fields.IntField()),
                ('allotment', fields.IntField()),
                ('sold', fields.IntField(default=0)),
                ('position', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'live_room_products', 'app': 'models', 'unique_together': (('room_id', 'sku_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.auction import AuctionStatus
from models.loyalty import PointsReason
from models.red_packet import RainStatus, RedPacketPrize
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0014_group_buy')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Auction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('room_id', fields.IntField()),
                ('sku', fields.ForeignKeyField('models.Sku', source_field='sku_id', db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(default='', max_length=64)),
                ('start_price', fields.IntField()),
                ('increment', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('scheduled_ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('snipe_seconds', fields.IntField(default=30)),
                ('extend_seconds', fields.IntField(default=30)),
                ('status', fields.CharEnumField(default=AuctionStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nLIVE: LIVE\nOFFERED: OFFERED\nSOLD: SOLD\nUNSOLD: UNSOLD\nCANCELLED: CANCELLED', enum_type=AuctionStatus, max_length=16)),
                ('current_price', fields.IntField(null=True)),
                ('next_min', fields.IntField()),
                ('leader', fields.ForeignKeyField('models.Member', source_field='leader_id', null=True, db_constraint=True, to_field='id', related_name='auctions_leading', on_delete=OnDelete.RESTRICT)),
                ('bid_count', fields.IntField(default=0)),
                ('extensions', fields.IntField(default=0)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('offer_member', fields.ForeignKeyField('models.Member', source_field='offer_member_id', null=True, db_constraint=True, to_field='id', related_name='auction_offers', on_delete=OnDelete.RESTRICT)),
                ('offer_price', fields.IntField(null=True)),
                ('offer_deadline', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('offer_rank', fields.IntField(default=0)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.SET_NULL)),
                ('sold_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('models.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='auctions', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'auctions', 'app': 'models', 'indexes': [Index(fields=['status', 'starts_at']), Index(fields=['status', 'ends_at']), Index(fields=['status', 'offer_deadline']), Index(fields=['room_id', 'starts_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuctionBid',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('auction', fields.ForeignKeyField('models.Auction', source_field='auction_id', db_constraint=True, to_field='id', related_name='bids', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='auction_bids', on_delete=OnDelete.RESTRICT)),
                ('amount', fields.IntField()),
                ('extended', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'auction_bids', 'app': 'models', 'unique_together': (('auction', 'amount'),), 'indexes': [Index(fields=['auction_id', 'member_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RedPacketRain',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('room_id', fields.IntField()),
                ('title', fields.CharField(default='', max_length=64)),
                ('prize', fields.CharEnumField(default=RedPacketPrize.POINTS, description='POINTS: POINTS', enum_type=RedPacketPrize, max_length=16)),
                ('total_amount', fields.IntField()),
                ('min_amount', fields.IntField(default=1)),
                ('packet_count', fields.IntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=RainStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nLIVE: LIVE\nENDED: ENDED\nCANCELLED: CANCELLED', enum_type=RainStatus, max_length=16)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('models.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='red_packet_rains', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'red_packet_rains', 'app': 'models', 'indexes': [Index(fields=['status', 'starts_at']), Index(fields=['status', 'ends_at']), Index(fields=['room_id', 'starts_at']), Index(fields=['settled_at', 'ends_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RedPacket',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rain', fields.ForeignKeyField('models.RedPacketRain', source_field='rain_id', db_constraint=True, to_field='id', related_name='packets', on_delete=OnDelete.CASCADE)),
                ('index', fields.IntField()),
                ('amount', fields.IntField()),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name='red_packets', on_delete=OnDelete.RESTRICT)),
                ('grabbed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('credited_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'red_packets', 'app': 'models', 'unique_together': (('rain', 'index'), ('rain', 'member')), 'indexes': [Index(fields=['member_id', 'credited_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='PointsEntry',
            name='reason',
            field=fields.CharEnumField(description='SIGN_IN: SIGN_IN\nPURCHASE: PURCHASE\nREVIEW: REVIEW\nSHARE: SHARE\nCHECKOUT: CHECKOUT\nREFUND: REFUND\nPOINTS_MALL: POINTS_MALL\nBIRTHDAY: BIRTHDAY\nADJUSTMENT: ADJUSTMENT\nRED_PACKET: RED_PACKET', enum_type=PointsReason, max_length=16),
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.coupon import CouponSource
from models.red_packet import RedPacketPrize
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0019_promotions')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='MemberCoupon',
            name='source',
            field=fields.CharEnumField(description='CENTER: CENTER\nISSUED: ISSUED\nCODE: CODE\nPOINTS_MALL: POINTS_MALL\nRED_PACKET: RED_PACKET', enum_type=CouponSource, max_length=12),
        ),
        ops.AlterField(
            model_name='RedPacketRain',
            name='prize',
            field=fields.CharEnumField(default=RedPacketPrize.POINTS, description='POINTS: POINTS\nCOUPON: COUPON', enum_type=RedPacketPrize, max_length=16),
        ),
        ops.AddField(
            model_name='RedPacketRain',
            name='coupon_id',
            field=fields.IntField(null=True),
        ),
    ]

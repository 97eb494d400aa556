from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0015_red_packets_auctions")]

    initial = False

    operations = [
        ops.AddField(
            model_name="LiveRoom",
            name="wechat_goods",
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0021_order_paid_at_index')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Refund',
            name='part_of',
            field=fields.ForeignKeyField('models.Refund', source_field='part_of_id', null=True, db_constraint=True, to_field='id', related_name='parts', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='Refund',
            name='payment',
            field=fields.ForeignKeyField('models.Payment', source_field='payment_id', null=True, db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.CASCADE),
        ),
    ]

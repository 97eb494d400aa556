from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_payment_sandbox')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SearchTermBlock',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('term', fields.CharField(unique=True, max_length=32)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='search_term_blocks', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'search_term_blocks', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_content')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Payment',
            name='sandbox',
            field=fields.BooleanField(default=False),
        ),
    ]

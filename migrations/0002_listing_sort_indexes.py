from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Product',
            name=None,
            fields=['status', 'created_at'],
        ),
        ops.AddIndex(
            model_name='Product',
            index=Index(fields=['status', 'published_at']),
        ),
        ops.AddIndex(
            model_name='Product',
            index=Index(fields=['status', 'total_stock']),
        ),
    ]

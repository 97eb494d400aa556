from tortoise import migrations
from tortoise.migrations import operations as ops
from models.product import MediaKind, ProductStatus
from models.staff import StaffRole
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Shop',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'shops', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Brand',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='brands', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=64)),
                ('logo_url', fields.CharField(default='', max_length=255)),
            ],
            options={'table': 'brands', 'app': 'models', 'unique_together': (('shop', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Category',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='categories', on_delete=OnDelete.RESTRICT)),
                ('parent', fields.ForeignKeyField('models.Category', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=32)),
                ('level', fields.SmallIntField()),
                ('path', fields.CharField(default='', max_length=64)),
                ('sort', fields.IntField(default=0)),
                ('icon_url', fields.CharField(default='', max_length=255)),
            ],
            options={'table': 'categories', 'app': 'models', 'unique_together': (('shop', 'parent', 'name'),), 'indexes': [Index(fields=['shop_id', 'level'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Product',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='products', on_delete=OnDelete.RESTRICT)),
                ('category', fields.ForeignKeyField('models.Category', source_field='category_id', db_constraint=True, to_field='id', related_name='products', on_delete=OnDelete.RESTRICT)),
                ('brand', fields.ForeignKeyField('models.Brand', source_field='brand_id', null=True, db_constraint=True, to_field='id', related_name='products', on_delete=OnDelete.SET_NULL)),
                ('title', fields.CharField(max_length=120)),
                ('subtitle', fields.CharField(default='', max_length=200)),
                ('description', fields.TextField(default='', unique=False)),
                ('status', fields.CharEnumField(default=ProductStatus.DRAFT, description='DRAFT: DRAFT\nON_SALE: ON_SALE\nOFF_SHELF: OFF_SHELF', enum_type=ProductStatus, max_length=16)),
                ('sales_count', fields.IntField(default=0)),
                ('stock_warning', fields.IntField(default=10)),
                ('min_price', fields.IntField(default=0)),
                ('max_price', fields.IntField(default=0)),
                ('total_stock', fields.IntField(default=0)),
                ('search_text', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'products', 'app': 'models', 'indexes': [Index(fields=['shop_id', 'status', 'category_id']), Index(fields=['status', 'sales_count']), Index(fields=['status', 'min_price']), Index(fields=['status', 'created_at']), Index(fields=['status', 'brand_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProductMedia',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='media', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(default=MediaKind.IMAGE, description='IMAGE: IMAGE\nVIDEO: VIDEO', enum_type=MediaKind, max_length=8)),
                ('url', fields.CharField(max_length=500)),
                ('sort', fields.IntField(default=0)),
            ],
            options={'table': 'product_media', 'app': 'models', 'indexes': [Index(fields=['product_id', 'sort'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Sku',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='skus', on_delete=OnDelete.CASCADE)),
                ('spec_key', fields.CharField(max_length=128)),
                ('price', fields.IntField()),
                ('original_price', fields.IntField(null=True)),
                ('member_price', fields.IntField(null=True)),
                ('tier_prices', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('stock', fields.IntField(default=0)),
                ('barcode', fields.CharField(default='', max_length=32)),
                ('weight_grams', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'skus', 'app': 'models', 'unique_together': (('product', 'spec_key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SpecDimension',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='spec_dimensions', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=32)),
                ('sort', fields.IntField(default=0)),
            ],
            options={'table': 'spec_dimensions', 'app': 'models', 'unique_together': (('product', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SpecValue',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dimension', fields.ForeignKeyField('models.SpecDimension', source_field='dimension_id', db_constraint=True, to_field='id', related_name='values', on_delete=OnDelete.CASCADE)),
                ('value', fields.CharField(max_length=32)),
                ('sort', fields.IntField(default=0)),
            ],
            options={'table': 'spec_values', 'app': 'models', 'unique_together': (('dimension', 'value'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SkuSpecValue',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sku', fields.ForeignKeyField('models.Sku', source_field='sku_id', db_constraint=True, to_field='id', related_name='spec_links', on_delete=OnDelete.CASCADE)),
                ('spec_value', fields.ForeignKeyField('models.SpecValue', source_field='spec_value_id', db_constraint=True, to_field='id', related_name='sku_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'sku_spec_values', 'app': 'models', 'unique_together': (('sku', 'spec_value'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Staff',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('role', fields.CharEnumField(default=StaffRole.ADMIN, description='ADMIN: ADMIN\nOPERATOR: OPERATOR\nCUSTOMER_SERVICE: CUSTOMER_SERVICE\nWAREHOUSE: WAREHOUSE', enum_type=StaffRole, max_length=24)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'staff', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_tokens', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Tag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.ForeignKeyField('models.Shop', source_field='shop_id', db_constraint=True, to_field='id', related_name='tags', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=32)),
            ],
            options={'table': 'tags', 'app': 'models', 'unique_together': (('shop', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProductTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='tag_links', on_delete=OnDelete.CASCADE)),
                ('tag', fields.ForeignKeyField('models.Tag', source_field='tag_id', db_constraint=True, to_field='id', related_name='product_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'product_tags', 'app': 'models', 'unique_together': (('product', 'tag'),), 'indexes': [Index(fields=['tag_id', 'product_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.content import ArticleStatus, FavoriteKind, Moderation
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_orders_payments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BrowsingHistory',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='history', on_delete=OnDelete.CASCADE)),
                ('product_id', fields.IntField()),
                ('views', fields.IntField(default=1)),
                ('viewed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'browsing_history', 'app': 'models', 'unique_together': (('member', 'product_id'),), 'indexes': [Index(fields=['member_id', 'viewed_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Favorite',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='favorites', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='PRODUCT: PRODUCT\nARTICLE: ARTICLE', enum_type=FavoriteKind, max_length=10)),
                ('target_id', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'favorites', 'app': 'models', 'unique_together': (('member', 'kind', 'target_id'),), 'indexes': [Index(fields=['member_id', 'kind', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Review',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('order_line', fields.OneToOneField('models.OrderLine', source_field='order_line_id', db_constraint=True, to_field='id', related_name='review', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='reviews', on_delete=OnDelete.CASCADE)),
                ('product_id', fields.IntField()),
                ('sku_id', fields.IntField()),
                ('spec', fields.CharField(default='', max_length=200)),
                ('rating', fields.SmallIntField()),
                ('description_score', fields.SmallIntField()),
                ('logistics_score', fields.SmallIntField()),
                ('service_score', fields.SmallIntField()),
                ('content', fields.TextField(default='', unique=False)),
                ('anonymous', fields.BooleanField(default=False)),
                ('moderation', fields.CharEnumField(default=Moderation.PENDING, description='PENDING: PENDING\nPASSED: PASSED\nHELD: HELD\nREJECTED: REJECTED', enum_type=Moderation, max_length=10)),
                ('label', fields.IntField(default=0)),
                ('hidden', fields.BooleanField(default=False)),
                ('featured', fields.BooleanField(default=False)),
                ('visible', fields.BooleanField(default=False)),
                ('photo_count', fields.IntField(default=0)),
                ('reply', fields.TextField(default='', unique=False)),
                ('reply_staff_id', fields.IntField(null=True)),
                ('replied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('append_content', fields.TextField(default='', unique=False)),
                ('append_moderation', fields.CharEnumField(null=True, description='PENDING: PENDING\nPASSED: PASSED\nHELD: HELD\nREJECTED: REJECTED', enum_type=Moderation, max_length=10)),
                ('appended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'reviews', 'app': 'models', 'indexes': [Index(fields=['product_id', 'visible', 'id']), Index(fields=['product_id', 'visible', 'rating']), Index(fields=['product_id', 'visible', 'photo_count']), Index(fields=['member_id', 'id']), Index(fields=['moderation', 'id']), Index(fields=['append_moderation', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('staff_id', fields.IntField(null=True)),
                ('storage_key', fields.CharField(unique=True, max_length=200)),
                ('url', fields.CharField(max_length=500)),
                ('thumbnail_url', fields.CharField(max_length=500)),
                ('content_type', fields.CharField(max_length=32)),
                ('width', fields.IntField()),
                ('height', fields.IntField()),
                ('size_bytes', fields.IntField()),
                ('moderation', fields.CharEnumField(default=Moderation.PENDING, description='PENDING: PENDING\nPASSED: PASSED\nHELD: HELD\nREJECTED: REJECTED', enum_type=Moderation, max_length=10)),
                ('label', fields.IntField(default=0)),
                ('scene', fields.SmallIntField(default=2)),
                ('trace_id', fields.CharField(null=True, unique=True, max_length=64)),
                ('check_attempts', fields.IntField(default=0)),
                ('next_check_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'uploads', 'app': 'models', 'indexes': [Index(fields=['member_id', 'id']), Index(fields=['moderation', 'next_check_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Article',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=64)),
                ('summary', fields.CharField(default='', max_length=200)),
                ('body_html', fields.TextField(default='', unique=False)),
                ('cover', fields.ForeignKeyField('models.Upload', source_field='cover_id', null=True, db_constraint=True, to_field='id', related_name='covers', on_delete=OnDelete.SET_NULL)),
                ('author_staff_id', fields.IntField(null=True)),
                ('author_member', fields.ForeignKeyField('models.Member', source_field='author_member_id', null=True, db_constraint=True, to_field='id', related_name='articles', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=ArticleStatus.DRAFT, description='DRAFT: DRAFT\nPUBLISHED: PUBLISHED', enum_type=ArticleStatus, max_length=10)),
                ('moderation', fields.CharEnumField(default=Moderation.PASSED, description='PENDING: PENDING\nPASSED: PASSED\nHELD: HELD\nREJECTED: REJECTED', enum_type=Moderation, max_length=10)),
                ('label', fields.IntField(default=0)),
                ('visible', fields.BooleanField(default=False)),
                ('like_count', fields.IntField(default=0)),
                ('favorite_count', fields.IntField(default=0)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'articles', 'app': 'models', 'indexes': [Index(fields=['visible', 'published_at']), Index(fields=['author_member_id', 'id']), Index(fields=['moderation', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleLike',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='likes', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='article_likes', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'article_likes', 'app': 'models', 'unique_together': (('article', 'member'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleMedia',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='media_links', on_delete=OnDelete.CASCADE)),
                ('upload', fields.ForeignKeyField('models.Upload', source_field='upload_id', db_constraint=True, to_field='id', related_name='article_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'article_media', 'app': 'models', 'unique_together': (('article', 'upload'),), 'indexes': [Index(fields=['upload_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleProduct',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='product_links', on_delete=OnDelete.CASCADE)),
                ('product_id', fields.IntField()),
                ('sort', fields.SmallIntField(default=0)),
            ],
            options={'table': 'article_products', 'app': 'models', 'unique_together': (('article', 'product_id'),), 'indexes': [Index(fields=['product_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='tags', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=32)),
            ],
            options={'table': 'article_tags', 'app': 'models', 'unique_together': (('article', 'name'),), 'indexes': [Index(fields=['name', 'article_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReviewPhoto',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('review', fields.ForeignKeyField('models.Review', source_field='review_id', db_constraint=True, to_field='id', related_name='photos', on_delete=OnDelete.CASCADE)),
                ('upload', fields.OneToOneField('models.Upload', source_field='upload_id', db_constraint=True, to_field='id', related_name='review_photo', on_delete=OnDelete.CASCADE)),
                ('sort', fields.SmallIntField(default=0)),
                ('appended', fields.BooleanField(default=False)),
            ],
            options={'table': 'review_photos', 'app': 'models', 'indexes': [Index(fields=['review_id', 'sort'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

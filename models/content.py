"""Content: uploaded images, reviews and their photos, articles, favourites and browsing history."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Moderation(StrEnum):
    # Waiting for WeChat's content-security verdict.
    PENDING = "PENDING"
    PASSED = "PASSED"
    # WeChat answered "review": held until staff decide.
    HELD = "HELD"
    REJECTED = "REJECTED"


# An image a member or staff uploaded: stored (local folder or S3) with a thumbnail, EXIF stripped. Shown to
# anyone but its owner only once WeChat's media check passed it (or staff approved it).
class Upload(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField(
        "models.Member", related_name="uploads", null=True, on_delete=fields.CASCADE
    )
    staff_id = fields.IntField(null=True)
    storage_key = fields.CharField(max_length=200, unique=True)
    url = fields.CharField(max_length=500)
    thumbnail_url = fields.CharField(max_length=500)
    content_type = fields.CharField(max_length=32)
    width = fields.IntField()
    height = fields.IntField()
    size_bytes = fields.IntField()
    moderation = fields.CharEnumField(Moderation, max_length=10, default=Moderation.PENDING)
    label = fields.IntField(default=0)
    # Where it is shown (WeChat's scene: 1 profile, 2 comment, 3 forum), asked again with the same scene.
    scene = fields.SmallIntField(default=2)
    # WeChat's media_check_async trace id; null until WeChat accepted the check (the sweeper asks again).
    trace_id = fields.CharField(max_length=64, null=True, unique=True)
    check_attempts = fields.IntField(default=0)
    next_check_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    checked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "uploads"
        indexes = (("member_id", "id"), ("moderation", "next_check_at"))


# One review per order line, written after receipt. `visible` is kept by services.content.reviews: its text
# passed the check and staff did not hide it. `photo_count` counts its photos that passed.
class Review(Model):
    id = fields.IntField(primary_key=True)
    order_line = fields.OneToOneField("models.OrderLine", related_name="review", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="reviews", on_delete=fields.CASCADE)
    product_id = fields.IntField()
    sku_id = fields.IntField()
    spec = fields.CharField(max_length=200, default="")
    rating = fields.SmallIntField()
    description_score = fields.SmallIntField()
    logistics_score = fields.SmallIntField()
    service_score = fields.SmallIntField()
    content = fields.TextField(default="")
    anonymous = fields.BooleanField(default=False)
    moderation = fields.CharEnumField(Moderation, max_length=10, default=Moderation.PENDING)
    label = fields.IntField(default=0)
    hidden = fields.BooleanField(default=False)
    featured = fields.BooleanField(default=False)
    visible = fields.BooleanField(default=False)
    photo_count = fields.IntField(default=0)
    reply = fields.TextField(default="")
    reply_staff_id = fields.IntField(null=True)
    replied_at = fields.DatetimeField(null=True)
    append_content = fields.TextField(default="")
    append_moderation = fields.CharEnumField(Moderation, max_length=10, null=True)
    appended_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "reviews"
        indexes = (
            ("product_id", "visible", "id"),
            ("product_id", "visible", "rating"),
            ("product_id", "visible", "photo_count"),
            ("member_id", "id"),
            ("moderation", "id"),
            ("append_moderation", "id"),
        )


class ReviewPhoto(Model):
    id = fields.IntField(primary_key=True)
    review = fields.ForeignKeyField("models.Review", related_name="photos", on_delete=fields.CASCADE)
    # An upload serves one review photo at most.
    upload = fields.OneToOneField("models.Upload", related_name="review_photo", on_delete=fields.CASCADE)
    sort = fields.SmallIntField(default=0)
    appended = fields.BooleanField(default=False)

    class Meta:
        table = "review_photos"
        indexes = (("review_id", "sort"),)


class ArticleStatus(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"


# A brand story or guide: sanitised HTML, a cover, linked products and tags. Written by staff or (when
# ARTICLES_BY_MEMBERS is on) by members, whose text and images pass WeChat's check before it is shown.
class Article(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=64)
    summary = fields.CharField(max_length=200, default="")
    body_html = fields.TextField(default="")
    cover = fields.ForeignKeyField(
        "models.Upload", related_name="covers", null=True, on_delete=fields.SET_NULL
    )
    author_staff_id = fields.IntField(null=True)
    author_member = fields.ForeignKeyField(
        "models.Member", related_name="articles", null=True, on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(ArticleStatus, max_length=10, default=ArticleStatus.DRAFT)
    moderation = fields.CharEnumField(Moderation, max_length=10, default=Moderation.PASSED)
    label = fields.IntField(default=0)
    # Published, text passed and every image passed: what readers may see.
    visible = fields.BooleanField(default=False)
    like_count = fields.IntField(default=0)
    favorite_count = fields.IntField(default=0)
    published_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "articles"
        indexes = (("visible", "published_at"), ("author_member_id", "id"), ("moderation", "id"))


class ArticleTag(Model):
    id = fields.IntField(primary_key=True)
    article = fields.ForeignKeyField("models.Article", related_name="tags", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=32)

    class Meta:
        table = "article_tags"
        unique_together = (("article", "name"),)
        indexes = (("name", "article_id"),)


class ArticleProduct(Model):
    id = fields.IntField(primary_key=True)
    article = fields.ForeignKeyField("models.Article", related_name="product_links", on_delete=fields.CASCADE)
    product_id = fields.IntField()
    sort = fields.SmallIntField(default=0)

    class Meta:
        table = "article_products"
        unique_together = (("article", "product_id"),)
        indexes = (("product_id",),)


# Every upload an article shows (cover and inline images): a member's article waits until all have passed.
class ArticleMedia(Model):
    id = fields.IntField(primary_key=True)
    article = fields.ForeignKeyField("models.Article", related_name="media_links", on_delete=fields.CASCADE)
    upload = fields.ForeignKeyField("models.Upload", related_name="article_links", on_delete=fields.CASCADE)

    class Meta:
        table = "article_media"
        unique_together = (("article", "upload"),)
        indexes = (("upload_id",),)


class ArticleLike(Model):
    id = fields.IntField(primary_key=True)
    article = fields.ForeignKeyField("models.Article", related_name="likes", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="article_likes", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "article_likes"
        unique_together = (("article", "member"),)


class FavoriteKind(StrEnum):
    PRODUCT = "PRODUCT"
    ARTICLE = "ARTICLE"


class Favorite(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="favorites", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(FavoriteKind, max_length=10)
    target_id = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "favorites"
        unique_together = (("member", "kind", "target_id"),)
        indexes = (("member_id", "kind", "id"),)


# The products a member looked at: one row per product, moved to the top on every view.
class BrowsingHistory(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="history", on_delete=fields.CASCADE)
    product_id = fields.IntField()
    views = fields.IntField(default=1)
    viewed_at = fields.DatetimeField()

    class Meta:
        table = "browsing_history"
        unique_together = (("member", "product_id"),)
        indexes = (("member_id", "viewed_at"),)

"""Products, their spec dimensions, SKUs and media."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ProductStatus(StrEnum):
    DRAFT = "DRAFT"
    ON_SALE = "ON_SALE"
    OFF_SHELF = "OFF_SHELF"


class MediaKind(StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"


class Product(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="products", on_delete=fields.RESTRICT)
    category = fields.ForeignKeyField("models.Category", related_name="products", on_delete=fields.RESTRICT)
    brand = fields.ForeignKeyField(
        "models.Brand", related_name="products", null=True, on_delete=fields.SET_NULL
    )
    title = fields.CharField(max_length=120)
    subtitle = fields.CharField(max_length=200, default="")
    description = fields.TextField(default="")
    status = fields.CharEnumField(ProductStatus, max_length=16, default=ProductStatus.DRAFT)
    sales_count = fields.IntField(default=0)
    stock_warning = fields.IntField(default=10)
    # Denormalised from the SKUs (kept in step by services.catalog) so listings filter and sort in SQL.
    min_price = fields.IntField(default=0)
    max_price = fields.IntField(default=0)
    total_stock = fields.IntField(default=0)
    # Lower-cased title, names, pinyin and initials; see services.catalog.search.
    search_text = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "products"
        indexes = (
            ("shop_id", "status", "category_id"),
            ("status", "sales_count"),
            ("status", "min_price"),
            ("status", "published_at"),
            ("status", "total_stock"),
            ("status", "brand_id"),
        )


class ProductTag(Model):
    id = fields.IntField(primary_key=True)
    product = fields.ForeignKeyField("models.Product", related_name="tag_links", on_delete=fields.CASCADE)
    tag = fields.ForeignKeyField("models.Tag", related_name="product_links", on_delete=fields.CASCADE)

    class Meta:
        table = "product_tags"
        unique_together = (("product", "tag"),)
        indexes = (("tag_id", "product_id"),)


class ProductMedia(Model):
    id = fields.IntField(primary_key=True)
    product = fields.ForeignKeyField("models.Product", related_name="media", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(MediaKind, max_length=8, default=MediaKind.IMAGE)
    url = fields.CharField(max_length=500)
    sort = fields.IntField(default=0)

    class Meta:
        table = "product_media"
        indexes = (("product_id", "sort"),)


# One axis of variation of a product, e.g. 颜色 or 尺码.
class SpecDimension(Model):
    id = fields.IntField(primary_key=True)
    product = fields.ForeignKeyField(
        "models.Product", related_name="spec_dimensions", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=32)
    sort = fields.IntField(default=0)

    class Meta:
        table = "spec_dimensions"
        unique_together = (("product", "name"),)


class SpecValue(Model):
    id = fields.IntField(primary_key=True)
    dimension = fields.ForeignKeyField(
        "models.SpecDimension", related_name="values", on_delete=fields.CASCADE
    )
    value = fields.CharField(max_length=32)
    sort = fields.IntField(default=0)

    class Meta:
        table = "spec_values"
        unique_together = (("dimension", "value"),)


class Sku(Model):
    id = fields.IntField(primary_key=True)
    product = fields.ForeignKeyField("models.Product", related_name="skus", on_delete=fields.CASCADE)
    # Sorted spec value ids joined by "-": one SKU per combination, enforced by the unique key.
    spec_key = fields.CharField(max_length=128)
    price = fields.IntField()
    original_price = fields.IntField(null=True)
    member_price = fields.IntField(null=True)
    # [{"min_quantity": 10, "price": 900}, ...] ascending by min_quantity.
    tier_prices = fields.JSONField(default=list)
    stock = fields.IntField(default=0)
    barcode = fields.CharField(max_length=32, default="")
    weight_grams = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "skus"
        unique_together = (("product", "spec_key"),)


class SkuSpecValue(Model):
    id = fields.IntField(primary_key=True)
    sku = fields.ForeignKeyField("models.Sku", related_name="spec_links", on_delete=fields.CASCADE)
    spec_value = fields.ForeignKeyField(
        "models.SpecValue", related_name="sku_links", on_delete=fields.CASCADE
    )

    class Meta:
        table = "sku_spec_values"
        unique_together = (("sku", "spec_value"),)

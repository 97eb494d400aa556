"""Catalog dimensions: the category tree, brands and tags."""

from tortoise import fields
from tortoise.models import Model

MAX_CATEGORY_LEVEL = 3


class Category(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="categories", on_delete=fields.RESTRICT)
    parent = fields.ForeignKeyField(
        "models.Category", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=32)
    level = fields.SmallIntField()
    # Ancestor ids root-first, e.g. "3/17"; lets breadcrumbs come from one batched load.
    path = fields.CharField(max_length=64, default="")
    sort = fields.IntField(default=0)
    icon_url = fields.CharField(max_length=255, default="")

    class Meta:
        table = "categories"
        unique_together = (("shop", "parent", "name"),)
        indexes = (("shop_id", "level"),)


class Brand(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="brands", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=64)
    logo_url = fields.CharField(max_length=255, default="")

    class Meta:
        table = "brands"
        unique_together = (("shop", "name"),)


class Tag(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="tags", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=32)

    class Meta:
        table = "tags"
        unique_together = (("shop", "name"),)


# A term staff took off the hot search words (spam, a competitor's name): never shown, never counted again.
class SearchTermBlock(Model):
    id = fields.IntField(primary_key=True)
    term = fields.CharField(max_length=32, unique=True)
    staff = fields.ForeignKeyField(
        "models.Staff", related_name="search_term_blocks", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "search_term_blocks"

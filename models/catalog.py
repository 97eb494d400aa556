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

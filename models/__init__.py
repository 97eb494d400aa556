"""Tortoise models; Tortoise discovers every model imported here (app label "models")."""

from models.catalog import MAX_CATEGORY_LEVEL, Brand, Category, Tag
from models.product import (
    MediaKind,
    Product,
    ProductMedia,
    ProductStatus,
    ProductTag,
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
)
from models.shop import DEFAULT_SHOP_CODE, Shop
from models.staff import Staff, StaffRole, StaffToken

__all__ = [
    "DEFAULT_SHOP_CODE",
    "MAX_CATEGORY_LEVEL",
    "Brand",
    "Category",
    "MediaKind",
    "Product",
    "ProductMedia",
    "ProductStatus",
    "ProductTag",
    "Shop",
    "Sku",
    "SkuSpecValue",
    "SpecDimension",
    "SpecValue",
    "Staff",
    "StaffRole",
    "StaffToken",
    "Tag",
]

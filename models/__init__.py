"""Tortoise models; Tortoise discovers every model imported here (app label "models")."""

from models.access import ApiKey, AuditLog
from models.address import Address
from models.catalog import MAX_CATEGORY_LEVEL, Brand, Category, Tag
from models.loyalty import MemberLevel, PointsEntry, PointsReason, SignIn
from models.member import Member, MemberSession
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
    "Address",
    "ApiKey",
    "AuditLog",
    "Brand",
    "Category",
    "MediaKind",
    "Member",
    "MemberLevel",
    "MemberSession",
    "PointsEntry",
    "PointsReason",
    "Product",
    "ProductMedia",
    "ProductStatus",
    "ProductTag",
    "Shop",
    "SignIn",
    "Sku",
    "SkuSpecValue",
    "SpecDimension",
    "SpecValue",
    "Staff",
    "StaffRole",
    "StaffToken",
    "Tag",
]

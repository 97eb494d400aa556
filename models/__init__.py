"""Tortoise models; Tortoise discovers every model imported here (app label "models")."""

from models.access import ApiKey, AuditLog
from models.address import Address
from models.cart import CartItem
from models.catalog import MAX_CATEGORY_LEVEL, Brand, Category, Tag
from models.loyalty import MemberLevel, PointsEntry, PointsReason, SignIn
from models.member import Member, MemberSession
from models.order import ActorKind, DeliveryMethod, Order, OrderEvent, OrderLine, OrderStatus
from models.payment import (
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    Payment,
    PaymentNotice,
    PaymentStatus,
    Refund,
    RefundStatus,
)
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
    "ActorKind",
    "Address",
    "AfterSale",
    "AfterSaleKind",
    "AfterSaleStatus",
    "ApiKey",
    "AuditLog",
    "Brand",
    "CartItem",
    "Category",
    "DeliveryMethod",
    "MediaKind",
    "Member",
    "MemberLevel",
    "MemberSession",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderStatus",
    "Payment",
    "PaymentNotice",
    "PaymentStatus",
    "PointsEntry",
    "PointsReason",
    "Product",
    "ProductMedia",
    "ProductStatus",
    "ProductTag",
    "Refund",
    "RefundStatus",
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

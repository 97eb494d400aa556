"""The root types and the Schema.

Each domain declares its own root fields (`CatalogQuery`, `CatalogMutation`, ...); the Schema merges them, so a
new domain adds one class to a tuple here instead of editing another domain's root type.
"""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from resolvers.access import AccessMutation, AccessQuery
from resolvers.addresses import AddressMutation, AddressQuery
from resolvers.auctions import AuctionMutation, AuctionQuery
from resolvers.bargain import BargainMutation, BargainQuery
from resolvers.campaign_sales import CampaignSalesQuery
from resolvers.cart import CartMutation, CartQuery
from resolvers.catalog import CatalogQuery, CatalogSubscription
from resolvers.catalog_admin import CatalogMutation
from resolvers.checkout import CheckoutMutation, CheckoutQuery
from resolvers.content import ContentMutation, ContentQuery
from resolvers.coupons import CouponMutation, CouponQuery
from resolvers.flash_sale import FlashSaleMutation, FlashSaleQuery, FlashSaleSubscription
from resolvers.group_buy import GroupBuyMutation, GroupBuyQuery
from resolvers.hot_words import HotWordsMutation, HotWordsQuery
from resolvers.live import LiveMutation, LiveQuery, LiveSubscription
from resolvers.loyalty import LoyaltyMutation, LoyaltyQuery
from resolvers.members import MemberMutation, MemberQuery
from resolvers.node import NodeQuery
from resolvers.orders import OrderMutation, OrderQuery, OrderSubscription
from resolvers.payments import PaymentMutation, PaymentQuery
from resolvers.points_mall import PointsMallMutation, PointsMallQuery
from resolvers.presale import PresaleMutation, PresaleQuery
from resolvers.promotions import PromotionMutation, PromotionQuery
from resolvers.red_packets import RedPacketMutation, RedPacketQuery
from schema import input_builders
from schema.catalog import Media, Sku
from schema.execution_context import ExecutionContext
from schema.extensions import LianmallSchema, edge_extensions
from schema.scalars import SCALAR_OVERRIDES
from schema.volatile import install as install_volatile_fields

QUERIES: tuple[type, ...] = (
    NodeQuery,
    CatalogQuery,
    LoyaltyQuery,
    AccessQuery,
    AddressQuery,
    MemberQuery,
    CartQuery,
    CheckoutQuery,
    OrderQuery,
    PaymentQuery,
    ContentQuery,
    HotWordsQuery,
    CouponQuery,
    PointsMallQuery,
    FlashSaleQuery,
    GroupBuyQuery,
    RedPacketQuery,
    BargainQuery,
    LiveQuery,
    PresaleQuery,
    PromotionQuery,
    AuctionQuery,
    CampaignSalesQuery,
)
MUTATIONS: tuple[type, ...] = (
    CatalogMutation,
    LoyaltyMutation,
    AccessMutation,
    AddressMutation,
    MemberMutation,
    CartMutation,
    CheckoutMutation,
    OrderMutation,
    PaymentMutation,
    ContentMutation,
    HotWordsMutation,
    CouponMutation,
    PointsMallMutation,
    FlashSaleMutation,
    GroupBuyMutation,
    RedPacketMutation,
    BargainMutation,
    LiveMutation,
    PresaleMutation,
    PromotionMutation,
    AuctionMutation,
)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)


Subscription = merge_types(
    "Subscription", (CatalogSubscription, OrderSubscription, LiveSubscription, FlashSaleSubscription)
)


def build_schema(*, fast: bool = True) -> strawberry.Schema:
    """The schema; `fast=False` leaves every operation to strawberry (the fast executor's reference)."""
    built = LianmallSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Media, Sku],
        extensions=edge_extensions(fast=fast),
        config=StrawberryConfig(auto_camel_case=True),
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=ExecutionContext,
    )
    # Stock and other per-sale numbers: plain resolvers that leave holes in cached answers.
    install_volatile_fields(built._schema)
    input_builders.install(built)
    return built


schema = build_schema()

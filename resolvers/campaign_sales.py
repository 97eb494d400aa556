"""`campaignSales`: staff see what the shelf and each campaign kind sold (services.analytics.campaign_sales)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from schema.context import Context
from schema.orders import CampaignKind
from services.access.permissions import Permission, require_permission
from services.analytics.campaign_sales import campaign_sales as sales_by_kind
from services.orders.campaigns import CampaignKind as CampaignKindModel


@strawberry.type(description="Orders paid in the window through one way of buying. Money in fen.")
class CampaignSalesRow:
    kind: CampaignKind | None = strawberry.field(description="Null: bought off the shelf.")
    orders: int
    units: int
    goods_amount: int = strawberry.field(description="Line totals at the campaign's price.")
    refunded_amount: int


async def campaign_sales(
    info: Info[Context, None], since: datetime, until: datetime
) -> list[CampaignSalesRow]:
    require_permission(info.context.viewer, Permission.DASHBOARD_READ)
    return [
        CampaignSalesRow(
            kind=CampaignKindModel(row.kind) if row.kind else None,
            orders=row.orders,
            units=row.units,
            goods_amount=row.goods_amount,
            refunded_amount=row.refunded_amount,
        )
        for row in await sales_by_kind(since, until)
    ]


@strawberry.type
class CampaignSalesQuery:
    campaign_sales: list[CampaignSalesRow] = strawberry.field(
        resolver=campaign_sales,
        description="Orders paid in [since, until) (at most 31 days) by the way they were bought: the shelf, "
        "flash sale, group buy, presale, ... Needs DASHBOARD_READ.",
    )

"""Campaign sales: what each way of buying (the shelf, a flash sale, a group buy, a presale, ...) sold.

Order lines keep the campaign they were bought through (`OrderLine.campaign_kind`), so one grouped query over
the lines of orders paid in a window tells campaign orders apart from shelf orders. Staff read it for a window
of at most REPORT_MAX_DAYS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.functions import Count, Sum

from models import OrderLine
from services.errors import DomainError, ErrorCode

REPORT_MAX_DAYS = 31


@dataclass(frozen=True)
class CampaignSales:
    """Paid orders of one way of buying in a window (`kind` None: the shelf). Money in fen."""

    kind: str | None
    orders: int
    units: int
    goods_amount: int
    refunded_amount: int


async def campaign_sales(since: datetime, until: datetime) -> list[CampaignSales]:
    """Sales by campaign kind of the orders paid in [since, until), the shelf first, then by kind.

    Raises BAD_USER_INPUT for an empty window or one longer than REPORT_MAX_DAYS.
    """
    if until <= since:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "The window ends after it starts", "until")
    if until - since > timedelta(days=REPORT_MAX_DAYS):
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A window is at most {REPORT_MAX_DAYS} days", "until")
    rows = (
        await OrderLine.filter(order__paid_at__gte=since, order__paid_at__lt=until)
        .annotate(
            orders=Count("order_id", distinct=True),
            units=Sum("quantity"),
            goods=Sum("line_total"),
            refunded=Sum("refunded_amount"),
        )
        .group_by("campaign_kind")
        .values("campaign_kind", "orders", "units", "goods", "refunded")
    )
    found = [
        CampaignSales(
            kind=row["campaign_kind"],
            orders=int(row["orders"] or 0),
            units=int(row["units"] or 0),
            goods_amount=int(row["goods"] or 0),
            refunded_amount=int(row["refunded"] or 0),
        )
        for row in rows
    ]
    return sorted(found, key=lambda r: (r.kind is not None, r.kind or ""))

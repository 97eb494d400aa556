"""A bargain as a campaign line of checkout: the starter buys one unit at the price reached, while the bargain
runs; a cancelled order gives the bargain back (it may be bought again while it runs) and the unit to the
activity's stock. Expired bargains are marked by a sweep job."""

from __future__ import annotations

from tortoise.expressions import F

from infra.clock import now
from models import Bargain, BargainActivity, BargainStatus, Order, OrderLine, OrderStatus, Sku
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.marketing.bargain.service import expire_bargains
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.sweeper import register_sweep_job

NODE = "Bargain"
FIELD = "input.items"
_BUYABLE = [BargainStatus.ONGOING, BargainStatus.SUCCEEDED]


class BargainCampaign:
    kind = CampaignKind.BARGAIN

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        if ref.node != NODE:
            raise DomainError(ErrorCode.NOT_FOUND, "A bargain purchase names a Bargain", FIELD)
        bargain = await Bargain.get_or_none(id=ref.id, member_id=member_id)
        activity = await BargainActivity.get_or_none(id=bargain.activity_id) if bargain else None  # type: ignore[attr-defined]
        if bargain is None or activity is None or activity.sku_id != sku.id:
            raise DomainError(ErrorCode.NOT_FOUND, "You have no bargain of this SKU with this ID", FIELD)
        if bargain.status not in _BUYABLE or bargain.expires_at <= now():
            raise DomainError(ErrorCode.CONFLICT, "This bargain can no longer be bought", FIELD)
        if quantity != 1:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, "A bargain buys one unit", FIELD)
        return CampaignPrice(
            bargain.current_price,
            {
                "bargainId": bargain.id,
                "activityId": activity.id,
                "title": activity.title,
                "startPrice": activity.start_price,
                "floorPrice": activity.floor_price,
                "reachedPrice": bargain.current_price,
                "cuts": bargain.cuts_done,
                "helpersNeeded": activity.helpers_needed,
            },
        )

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None  # the database guards it in `attach`

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        bargain = await Bargain.get(id=ref.id)
        taken = await Bargain.filter(id=ref.id, order_id=None, status__in=_BUYABLE).update(
            order_id=order.id, status=BargainStatus.ORDERED
        )
        if not taken:
            raise DomainError(ErrorCode.CONFLICT, "This bargain is already bought", FIELD)
        activity = await BargainActivity.get(id=bargain.activity_id)  # type: ignore[attr-defined]
        sold = await BargainActivity.filter(id=activity.id, sold__lte=activity.stock - quantity).update(
            sold=F("sold") + quantity
        )
        if not sold:
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "This bargain activity is sold out", FIELD)


async def give_back_on_cancel(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    """A cancelled bargain order: the bargain is buyable again (while it runs) and the unit back in stock."""
    lines = await OrderLine.filter(order_id=order.id, campaign_kind=CampaignKind.BARGAIN.value).values_list(
        "campaign_id", "quantity"
    )
    for bargain_id, quantity in lines:
        bargain = await Bargain.get_or_none(id=bargain_id, order_id=order.id)
        if bargain is None:
            continue
        activity = await BargainActivity.get(id=bargain.activity_id)  # type: ignore[attr-defined]
        reached = bargain.cuts_done >= activity.helpers_needed
        await Bargain.filter(id=bargain.id, order_id=order.id).update(
            order_id=None, status=BargainStatus.SUCCEEDED if reached else BargainStatus.ONGOING
        )
        await BargainActivity.filter(id=activity.id, sold__gte=quantity).update(sold=F("sold") - quantity)


register_campaign(BargainCampaign())
states.register_entry_hook(OrderStatus.CANCELLED, give_back_on_cancel)
register_sweep_job("expired bargains", expire_bargains)

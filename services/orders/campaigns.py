"""Campaign lines: a way to buy a SKU at a campaign's own price (flash sale, group buy, bargain, presale, live
room, auction), registered by the higher domain that runs the campaign.

Checkout knows only this registry. For an item that names a campaign it asks the campaign's handler for the
unit price (the first step of the pricing pipeline, before any promotion), lets it take what the campaign
allots before the order's transaction (`reserve`, e.g. one atomic Redis script) and give it back if the order
is not written (`unreserve`), and lets it record its part inside the order's transaction (`attach`). Releasing
on cancel, refund or timeout is done through the state machine's entry hooks (services.orders.states).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from models import Order, Sku
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode


class CampaignKind(StrEnum):
    FLASH_SALE = "FLASH_SALE"
    GROUP_BUY = "GROUP_BUY"
    BARGAIN = "BARGAIN"
    PRESALE = "PRESALE"
    LIVE_ROOM = "LIVE_ROOM"
    AUCTION = "AUCTION"
    POINTS_MALL = "POINTS_MALL"  # a SKU exchanged for points plus cash in the points mall


@dataclass(frozen=True)
class CampaignRef:
    """Which campaign an item is bought through: `id` is the handler's own row (a flash-sale SKU, a group buy
    rule or one open group, ...), `node` the type name its global ID carried, so a handler can tell them apart."""

    kind: CampaignKind
    id: int
    node: str = ""


@dataclass(frozen=True)
class CampaignPrice:
    """The campaign's unit price for one item, and what the order line keeps of the campaign."""

    unit_price: int
    snapshot: Mapping[str, Any] = field(default_factory=dict)


class CampaignHandler(Protocol):
    kind: CampaignKind

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        """The unit price, or a DomainError saying why this member cannot buy this way now."""
        ...

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Take the campaign's allotment before the order's transaction (no-op when the DB guards it)."""
        ...

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Give back what `reserve` took when the order was not written."""
        ...

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        """Record the campaign's side of a written order, inside the order's transaction."""
        ...


class TurnsAway(Protocol):
    """Optional for a handler: refuse an attempt before checkout's first query (e.g. a flash sale sold out in
    Redis), so a crowd that cannot win costs no SQL. It must let through a repeated request whose order may exist."""

    async def turn_away(self, member_id: int, ref: CampaignRef, quantity: int) -> None: ...


_handlers: dict[CampaignKind, CampaignHandler] = {}


def register_campaign(handler: CampaignHandler) -> None:
    _handlers[handler.kind] = handler


def unregister_campaign(kind: CampaignKind) -> None:
    _handlers.pop(kind, None)


def handler_for(ref: CampaignRef, field_name: str = "input.items") -> CampaignHandler:
    handler = _handlers.get(ref.kind)
    if handler is None:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"{ref.kind} is not available in this shop", field_name)
    return handler


async def turn_away(member_id: int, refs: list[tuple[CampaignRef, int]]) -> None:
    """Let each campaign that can refuse `(ref, quantity)` early do so (a DomainError), before any query."""
    for ref, quantity in refs:
        handler = _handlers.get(ref.kind)
        early = getattr(handler, "turn_away", None)
        if early is not None:
            await early(member_id, ref, quantity)

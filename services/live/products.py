"""Room products: a SKU sold in a live room at a live price, out of an allotment, one of them pinned (讲解中).

Buying from the room is a campaign line (kind LIVE_ROOM, id: the room product): checkout asks `LiveRoomCampaign`
for the unit price, which is the first step of the pricing pipeline, and only while the room is LIVE; inside the
order's transaction one guarded update takes the quantity from the allotment (never past it, whichever process
sells), and the order line keeps the room. An unpaid order cancelled gives its quantity back. Every committed
change (price, allotment, sale, pin) is announced in the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tortoise import connections
from tortoise.expressions import F

from infra.clock import now
from models import (
    LiveRoom,
    LiveRoomProduct,
    LiveRoomStatus,
    MediaKind,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductMedia,
    ProductStatus,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.live.events import (
    PriceChanged,
    ProductPinned,
    ProductUnpinned,
    StockChanged,
    publish_room_event,
)
from services.live.rooms import get_room
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.states import Announcements, register_entry_hook

log = logging.getLogger("lianmall.live.products")

MAX_PRICE = 10_000_000
MAX_ALLOTMENT = 1_000_000
MAX_PRODUCTS_PER_ROOM = 200


def remaining(room_product: LiveRoomProduct, sku_stock: int) -> int:
    """What a viewer can still buy: the rest of the allotment, never more than the SKU's own stock."""
    return max(0, min(room_product.allotment - room_product.sold, sku_stock))


async def get_room_product(room_product_id: int, field: str = "id") -> LiveRoomProduct:
    found = await LiveRoomProduct.get_or_none(id=room_product_id)
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such room product", field)
    return found


def _check_price(live_price: int, field: str) -> None:
    if not 0 < live_price <= MAX_PRICE:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A live price is 1 to {MAX_PRICE} fen", field)


def _check_allotment(allotment: int, field: str) -> None:
    if not 0 < allotment <= MAX_ALLOTMENT:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"An allotment is 1 to {MAX_ALLOTMENT}", field)


async def add_room_product(room_id: int, sku_id: int, live_price: int, allotment: int) -> LiveRoomProduct:
    """Sell `sku_id` in the room at `live_price` (fen), at most `allotment` of it.

    Raises NOT_FOUND (room, SKU), OFF_SHELF, CONFLICT (room ended, SKU already in the room), BAD_USER_INPUT.
    """
    _check_price(live_price, "input.livePrice")
    _check_allotment(allotment, "input.allotment")
    room = await get_room(room_id, "input.roomId")
    if room.status == LiveRoomStatus.ENDED:
        raise DomainError(ErrorCode.CONFLICT, "The room has ended", "input.roomId")
    sku = await Sku.get_or_none(id=sku_id)
    if sku is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU", "input.skuId")
    product = await Product.get(id=sku.product_id)
    if product.status != ProductStatus.ON_SALE:
        raise DomainError(ErrorCode.OFF_SHELF, "The product is not on sale", "input.skuId")
    if await LiveRoomProduct.filter(room_id=room_id, sku_id=sku_id).exists():
        raise DomainError(ErrorCode.CONFLICT, "The SKU is already sold in this room", "input.skuId")
    count = await LiveRoomProduct.filter(room_id=room_id).count()
    if count >= MAX_PRODUCTS_PER_ROOM:
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {MAX_PRODUCTS_PER_ROOM} products per room")
    return await LiveRoomProduct.create(
        room_id=room_id,
        product_id=product.id,
        sku_id=sku_id,
        live_price=live_price,
        allotment=allotment,
        position=count,
    )


async def update_room_product(
    room_product_id: int, live_price: int | None = None, allotment: int | None = None
) -> LiveRoomProduct:
    """Change the live price and/or the allotment; the room hears PriceChanged / StockChanged.

    An allotment below what was already sold is refused (BAD_USER_INPUT), as is any change in an ended room.
    """
    item = await get_room_product(room_product_id)
    room = await get_room(item.room_id)  # type: ignore[attr-defined]
    if room.status == LiveRoomStatus.ENDED:
        raise DomainError(ErrorCode.CONFLICT, "The room has ended", "id")
    changes: dict[str, Any] = {}
    if live_price is not None:
        _check_price(live_price, "input.livePrice")
        changes["live_price"] = live_price
    if allotment is not None:
        _check_allotment(allotment, "input.allotment")
        changes["allotment"] = allotment
    if allotment is not None:
        updated = await LiveRoomProduct.filter(id=item.id, sold__lte=allotment).update(**changes)
        if not updated:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT,
                f"{item.sold} are sold already; the allotment cannot be less",
                "input.allotment",
            )
    elif changes:
        await LiveRoomProduct.filter(id=item.id).update(**changes)
    item = await get_room_product(room_product_id)
    if live_price is not None:
        sku = await Sku.get(id=item.sku_id)
        await publish_room_event(
            room.id,
            PriceChanged(
                room_product_id=item.id,
                product_id=item.product_id,
                sku_id=item.sku_id,
                live_price=item.live_price,
                original_price=sku.price,
            ),
        )
    if allotment is not None:
        await _announce_stock([item])
    return item


async def remove_room_product(room_product_id: int) -> LiveRoom:
    """Stop selling it in the room (unpinned first if it was pinned). Orders placed from it keep their lines."""
    item = await get_room_product(room_product_id)
    room_id: int = item.room_id  # type: ignore[attr-defined]
    unpinned = await LiveRoom.filter(id=room_id, pinned_id=item.id).update(pinned_id=None, updated_at=now())
    await item.delete()
    if unpinned:
        await publish_room_event(room_id, ProductUnpinned(room_product_id=item.id))
    return await get_room(room_id)


async def pin(room_id: int, room_product_id: int | None) -> LiveRoom:
    """Present one room product now (讲解中), replacing the one before; None: present nothing."""
    room = await get_room(room_id, "roomId")
    if room.status == LiveRoomStatus.ENDED:
        raise DomainError(ErrorCode.CONFLICT, "The room has ended", "roomId")
    item = None
    if room_product_id is not None:
        item = await get_room_product(room_product_id, "roomProductId")
        if item.room_id != room_id:  # type: ignore[attr-defined]
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "That product is sold in another room", "roomProductId"
            )
    pinned_before = room.pinned_id
    room.pinned_id, room.updated_at = item.id if item else None, now()
    await LiveRoom.filter(id=room_id).update(pinned_id=room.pinned_id, updated_at=room.updated_at)
    if item is not None:
        await publish_room_event(room_id, await pinned_event(item))
    elif pinned_before is not None:
        await publish_room_event(room_id, ProductUnpinned(room_product_id=pinned_before))
    return room


async def pinned_event(item: LiveRoomProduct) -> ProductPinned:
    sku = await Sku.get(id=item.sku_id)
    product = await Product.get(id=item.product_id)
    image = (
        await ProductMedia.filter(product_id=product.id, kind=MediaKind.IMAGE).order_by("sort", "id").first()
    )
    return ProductPinned(
        room_product_id=item.id,
        product_id=product.id,
        sku_id=sku.id,
        title=product.title,
        image_url=image.url if image else "",
        live_price=item.live_price,
        original_price=sku.price,
        stock=remaining(item, sku.stock),
    )


async def announce_stock(room_product_ids: Iterable[int]) -> None:
    """Tell each room what is left of these room products now (read after the change committed)."""
    await _announce_stock(await LiveRoomProduct.filter(id__in=list(room_product_ids)))


async def _announce_stock(items: list[LiveRoomProduct]) -> None:
    """announce_stock for room products just read (after the change committed)."""
    stocks = dict(await Sku.filter(id__in=[i.sku_id for i in items]).values_list("id", "stock"))
    for item in items:
        await publish_room_event(
            item.room_id,  # type: ignore[attr-defined]
            StockChanged(
                room_product_id=item.id,
                product_id=item.product_id,
                sku_id=item.sku_id,
                stock=remaining(item, int(stocks.get(item.sku_id, 0))),
            ),
        )


# --- Buying from the room: the LIVE_ROOM campaign -------------------------------------------------------------

# Background announcements waiting for their transaction to end (kept referenced until they finish).
_pending: set[asyncio.Task[None]] = set()
COMMIT_WAIT_SECONDS = 2.0


def _leave_transaction() -> None:
    """In a task started inside a transaction (it copied the transaction's connection with its context): go back
    to the connection the transaction was opened on, or every query would wait on, or break, the transaction."""
    connection = connections.get("default")
    while (parent := getattr(connection, "_parent", None)) is not None:
        connection = parent
    connections.set("default", connection)


def _after(settled: Callable[[], Awaitable[bool]], room_product_ids: list[int]) -> None:
    """Announce the stock of these room products once `settled()` says the transaction that changed them has
    committed (or after COMMIT_WAIT_SECONDS: it rolled back, and the stock read then is right anyway)."""

    async def wait_then_announce() -> None:
        _leave_transaction()
        deadline = asyncio.get_running_loop().time() + COMMIT_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if await settled():
                break
            await asyncio.sleep(0.01)
        await announce_stock(room_product_ids)

    task = asyncio.create_task(wait_then_announce())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def settle() -> None:
    """Wait for the stock announcements still waiting on their transactions (tests, shutdown)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


class LiveRoomCampaign:
    """Checkout's handler for items bought in a live room (`campaign: {kind: LIVE_ROOM, id: <LiveRoomProduct>}`)."""

    kind = CampaignKind.LIVE_ROOM

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        if ref.node and ref.node != "LiveRoomProduct":
            raise DomainError(
                ErrorCode.INVALID_ID, "A LIVE_ROOM campaign is a LiveRoomProduct ID", "input.items"
            )
        item = await LiveRoomProduct.get_or_none(id=ref.id)
        if item is None or item.sku_id != sku.id:
            raise DomainError(ErrorCode.NOT_FOUND, "This SKU is not sold in that room", "input.items")
        room = await LiveRoom.get(id=item.room_id)  # type: ignore[attr-defined]
        if room.status != LiveRoomStatus.LIVE:
            raise DomainError(
                ErrorCode.CONFLICT, "The live price holds only while the room is live", "input.items"
            )
        if remaining(item, sku.stock) < quantity:
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "The room's allotment is sold out", "input.items")
        return CampaignPrice(
            unit_price=item.live_price,
            snapshot={
                "roomId": room.id,
                "roomTitle": room.title,
                "roomProductId": item.id,
                "livePrice": item.live_price,
            },
        )

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None  # the allotment is taken inside the order's transaction (attach)

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        taken = await LiveRoomProduct.filter(id=ref.id, sold__lte=F("allotment") - quantity).update(
            sold=F("sold") + quantity
        )
        if not taken:
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "The room's allotment is sold out", "input.items")
        order_id = order.id
        _after(lambda: Order.exists(id=order_id), [ref.id])


async def give_back(order: Order, from_status: OrderStatus, news: Announcements) -> None:
    """An unpaid order placed from a room is cancelled: its quantity goes back to the room's allotment."""
    if from_status != OrderStatus.PENDING_PAYMENT:
        return
    lines = await OrderLine.filter(order_id=order.id, campaign_kind=CampaignKind.LIVE_ROOM.value).values(
        "campaign_id", "quantity"
    )
    for line in lines:
        await LiveRoomProduct.filter(id=line["campaign_id"]).update(sold=F("sold") - line["quantity"])
    if lines:
        order_id = order.id
        _after(
            lambda: Order.exists(id=order_id, status=OrderStatus.CANCELLED),
            [int(line["campaign_id"]) for line in lines],
        )


register_campaign(LiveRoomCampaign())
register_entry_hook(OrderStatus.CANCELLED, give_back)

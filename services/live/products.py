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
from dataclasses import dataclass

from tortoise import connections
from tortoise.expressions import F

from infra import raw_sql
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
    return _left(room_product.allotment, room_product.sold, sku_stock)


def _left(allotment: int, sold: int, sku_stock: int) -> int:
    return max(0, min(allotment - sold, sku_stock))


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


@dataclass(frozen=True)
class ChangedRoomProduct:
    item: LiveRoomProduct
    pinned: bool  # whether it is the room's pinned product


# The change, guarded, and what its announcements and answer need, in one statement: nothing changes in an ended
# room, the allotment never goes below what was sold; the row comes back with its SKU's stock and list price and
# whether the room pins it. ($2 live price, $3 allotment: NULL leaves it as it is.)
_UPDATE_SQL = (
    "UPDATE live_room_products SET live_price = COALESCE($2, live_price), allotment = COALESCE($3, allotment)"
    " WHERE id = $1 AND sold <= COALESCE($3, sold) AND EXISTS (SELECT 1 FROM live_rooms r"
    " WHERE r.id = live_room_products.room_id AND r.status <> 'ENDED')"
    " RETURNING id, room_id, product_id, sku_id, live_price, allotment, sold,"
    " (SELECT s.stock FROM skus s WHERE s.id = live_room_products.sku_id),"
    " (SELECT s.price FROM skus s WHERE s.id = live_room_products.sku_id),"
    " (SELECT r.pinned_id FROM live_rooms r WHERE r.id = live_room_products.room_id)"
)


_UPDATED = ("id", "room_id", "product_id", "sku_id", "live_price", "allotment", "sold")


async def update_room_product(
    room_product_id: int, live_price: int | None = None, allotment: int | None = None
) -> ChangedRoomProduct:
    """Change the live price and/or the allotment; the room hears PriceChanged / StockChanged.

    An allotment below what was already sold is refused (BAD_USER_INPUT), as is any change in an ended room.
    """
    if live_price is not None:
        _check_price(live_price, "input.livePrice")
    if allotment is not None:
        _check_allotment(allotment, "input.allotment")
    if live_price is None and allotment is None:
        item = await get_room_product(room_product_id)
        await _refuse_if_ended(item)
        room = await get_room(item.room_id)  # type: ignore[attr-defined]
        return ChangedRoomProduct(item, room.pinned_id == item.id)
    rows = await raw_sql.fetch(_UPDATE_SQL, [room_product_id, live_price, allotment])
    if not rows:
        item = await get_room_product(room_product_id)
        await _refuse_if_ended(item)
        raise DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"{item.sold} are sold already; the allotment cannot be less",
            "input.allotment",
        )
    *columns, sku_stock, sku_price, pinned_id = rows[0]
    item = LiveRoomProduct(**dict(zip(_UPDATED, columns, strict=True)))
    room_id: int = item.room_id  # type: ignore[attr-defined]
    if live_price is not None:
        await publish_room_event(
            room_id,
            PriceChanged(
                room_product_id=item.id,
                product_id=item.product_id,
                sku_id=item.sku_id,
                live_price=item.live_price,
                original_price=int(sku_price or 0),
            ),
        )
    if allotment is not None:
        await publish_room_event(room_id, _stock_changed(item, int(sku_stock or 0)))
    return ChangedRoomProduct(item, pinned_id == item.id)


async def _refuse_if_ended(item: LiveRoomProduct) -> None:
    room = await get_room(item.room_id)  # type: ignore[attr-defined]
    if room.status == LiveRoomStatus.ENDED:
        raise DomainError(ErrorCode.CONFLICT, "The room has ended", "id")


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
    pinned = None
    if room_product_id is not None:
        found = await _pinned_event(room_product_id)
        if found is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such room product", "roomProductId")
        sold_in, pinned = found
        if sold_in != room_id:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "That product is sold in another room", "roomProductId"
            )
    pinned_before = room.pinned_id
    room.pinned_id, room.updated_at = room_product_id, now()
    await LiveRoom.filter(id=room_id).update(pinned_id=room.pinned_id, updated_at=room.updated_at)
    if pinned is not None:
        await publish_room_event(room_id, pinned)
    elif pinned_before is not None:
        await publish_room_event(room_id, ProductUnpinned(room_product_id=pinned_before))
    return room


# A room product as its ProductPinned event shows it: its SKU's stock and list price, the product's title and
# first image, in one statement.
_PINNED_SQL = (
    "SELECT rp.room_id, rp.product_id, rp.sku_id, rp.live_price, rp.allotment, rp.sold, s.stock, s.price,"
    " p.title, (SELECT m.url FROM product_media m WHERE m.product_id = rp.product_id AND m.kind = $2"
    " ORDER BY m.sort, m.id LIMIT 1)"
    " FROM live_room_products rp JOIN skus s ON s.id = rp.sku_id JOIN products p ON p.id = rp.product_id"
    " WHERE rp.id = $1"
)


async def _pinned_event(room_product_id: int) -> tuple[int, ProductPinned] | None:
    """The room a room product is sold in, and the event that pins it (None: no such room product)."""
    rows = await raw_sql.fetch(_PINNED_SQL, [room_product_id, MediaKind.IMAGE.value])
    if not rows:
        return None
    room_id, product_id, sku_id, live_price, allotment, sold, stock, price, title, image_url = rows[0]
    return int(room_id), ProductPinned(
        room_product_id=room_product_id,
        product_id=int(product_id),
        sku_id=int(sku_id),
        title=str(title),
        image_url=str(image_url or ""),
        live_price=int(live_price),
        original_price=int(price),
        stock=_left(int(allotment), int(sold), int(stock)),
    )


async def announce_stock(room_product_ids: Iterable[int]) -> None:
    """Tell each room what is left of these room products now (read after the change committed)."""
    await _announce_stock(await LiveRoomProduct.filter(id__in=list(room_product_ids)))


async def _announce_stock(items: list[LiveRoomProduct]) -> None:
    """announce_stock for room products just read (after the change committed)."""
    stocks = dict(await Sku.filter(id__in=[i.sku_id for i in items]).values_list("id", "stock"))
    for item in items:
        await publish_room_event(item.room_id, _stock_changed(item, int(stocks.get(item.sku_id, 0))))  # type: ignore[attr-defined]


def _stock_changed(item: LiveRoomProduct, sku_stock: int) -> StockChanged:
    return StockChanged(
        room_product_id=item.id,
        product_id=item.product_id,
        sku_id=item.sku_id,
        stock=remaining(item, sku_stock),
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

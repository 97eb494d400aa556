"""Checkout: price a selection (`checkout_preview`) and turn it into an order (`place_order`).

`place_order` reads and prices before its transaction (services.orders.checkout_rows: the buyer and the SKUs in
two statements), then writes in one transaction: the order with a snapshot of every line and of the address,
what the pricing steps and campaigns record (a coupon spent, ...), the points spent, the bought cart lines
cleared, and last the guarded stock decrements (services.orders.stock: the rows say whether stock was there, so
nothing is ever oversold on SQLite or PostgreSQL; last, so the hot SKU's row is locked only until the commit).
An order with nothing else to record (no campaign, coupon, points, cart lines or gifts) is that transaction as
one statement on PostgreSQL (services.orders.new_order.write_plain_order). Any failure rolls all of it back.
Network calls (WeChat Pay) and events happen only after the commit.

An idempotency key names one attempt of the shopper: the same key returns the order it made, also when two
requests with it race (the unique key (member, idempotency_key) decides, and the loser reads the winner's).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import raw_sql
from infra.clock import now
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import (
    ActorKind,
    CartItem,
    DeliveryMethod,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    PointsReason,
    ProductStatus,
)
from services.catalog.events import StockChange, stock_changed
from services.catalog.prices import PriceContext, unit_price
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.loyalty.points import apply_points_change
from services.orders import campaigns, pricing
from services.orders.campaigns import CampaignRef, handler_for
from services.orders.cart import points_rules, purchase_limit, shipping_rules, shopper_with_growth
from services.orders.checkout_rows import (
    AddressSnapshot,
    Buyer,
    SkuRow,
    read_buyer,
    read_buyer_and_skus,
    read_skus,
)
from services.orders.new_order import write_order, write_plain_order
from services.orders.pipeline import (
    AppliedDiscount,
    Gift,
    PricingContext,
    Stage,
    registered_steps,
    step_attaches,
)
from services.orders.states import transition
from services.orders.stock import Taken, take_stock
from services.payments import wechat_pay
from services.payments.wechat_pay import NewOrder, PayParams

log = logging.getLogger("lianmall.checkout")

KEY_MAX = 64
NOTE_MAX = 200
MAX_ITEMS = 50
_NUMBER_ATTEMPTS = 3


@dataclass(frozen=True)
class ItemRequest:
    sku_id: int
    quantity: int
    campaign: CampaignRef | None = None


@dataclass(frozen=True)
class CheckoutRequest:
    """What the shopper buys: `items` ("buy now") or the selected cart lines (`from_cart`)."""

    address_id: int | None = None
    items: tuple[ItemRequest, ...] = ()
    from_cart: bool = False
    delivery: DeliveryMethod = DeliveryMethod.EXPRESS
    points_to_use: int = 0
    note: str = ""
    # The held coupons (ids) the shopper chose; None: the pipeline's COUPON step picks the best for them.
    coupons: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LineSnapshot:
    sku_id: int
    product_id: int
    title: str
    spec: str
    image_url: str
    unit_price: int
    quantity: int
    campaign: CampaignRef | None = None
    campaign_snapshot: dict[str, Any] | None = None

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Preview:
    lines: tuple[LineSnapshot, ...]
    quote: pricing.Quote
    address: AddressSnapshot | None
    shop_id: int
    pricing: PricingContext


# --- Reading the request -----------------------------------------------------------------------------------


def _check_request(request: CheckoutRequest) -> None:
    problems: list[DomainError] = []
    if request.from_cart and request.items:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, "Give either items or fromCart, not both", "input.items")
        )
    if request.points_to_use < 0:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, "Points cannot be negative", "input.pointsToUse")
        )
    if len(request.note) > NOTE_MAX:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"The note is at most {NOTE_MAX} characters", "input.note")
        )
    limit = purchase_limit()
    for i, item in enumerate(request.items):
        if not 1 <= item.quantity <= limit:
            problems.append(
                DomainError(
                    ErrorCode.LIMIT_EXCEEDED if item.quantity > limit else ErrorCode.BAD_USER_INPUT,
                    f"The quantity is 1 to {limit}",
                    f"input.items[{i}].quantity",
                )
            )
    if problems:
        raise ValidationErrors(problems)


async def _requested(member_id: int, request: CheckoutRequest) -> list[ItemRequest]:
    _check_request(request)
    if request.from_cart:
        rows = await CartItem.filter(member_id=member_id, selected=True).order_by("id")
        items = [ItemRequest(row.sku_id, row.quantity) for row in rows]
    else:
        items = list(request.items)
    if not items:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Nothing to buy", "input.items")
    # One line per SKU and way of buying it (a campaign's price is not the shelf price).
    merged: dict[tuple[int, CampaignRef | None], int] = {}
    for item in items:
        merged[(item.sku_id, item.campaign)] = merged.get((item.sku_id, item.campaign), 0) + item.quantity
    if len(merged) > MAX_ITEMS:
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {MAX_ITEMS} items per order", "input.items")
    limit = purchase_limit()
    per_sku: dict[int, int] = {}
    for (sku_id, _), quantity in merged.items():
        per_sku[sku_id] = per_sku.get(sku_id, 0) + quantity
    for sku_id, quantity in per_sku.items():
        if quantity > limit:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED, f"At most {limit} of one item per order (SKU {sku_id})", "input"
            )
    ordered = sorted(merged.items(), key=lambda kv: (kv[0][0], _campaign_key(kv[0][1])))
    return [ItemRequest(sku_id, quantity, campaign) for (sku_id, campaign), quantity in ordered]


def _campaign_key(ref: CampaignRef | None) -> tuple[str, int]:
    return ("", 0) if ref is None else (ref.kind.value, ref.id)


def _address(request: CheckoutRequest, buyer: Buyer) -> AddressSnapshot | None:
    if request.address_id is None:
        if request.delivery == DeliveryMethod.EXPRESS:
            raise DomainError(ErrorCode.BAD_USER_INPUT, "Choose a delivery address", "input.addressId")
        return None
    if buyer.address is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No address has this ID", "input.addressId")
    return buyer.address


async def _skus(items: Sequence[ItemRequest]) -> dict[int, SkuRow]:
    return _sellable(items, await read_skus(sorted({i.sku_id for i in items})))


def _sellable(items: Sequence[ItemRequest], skus: dict[int, SkuRow]) -> dict[int, SkuRow]:
    """`skus` (as read) when every item's SKU exists, is on sale and all are of one shop."""
    for item in items:
        sku = skus.get(item.sku_id)
        if sku is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"No SKU {item.sku_id}", "input.items")
        if sku.status != ProductStatus.ON_SALE:
            raise DomainError(ErrorCode.OFF_SHELF, f"{sku.title} is not on sale", "input.items")
    if len({sku.shop_id for sku in skus.values()}) > 1:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, "Items of different shops are ordered separately", "input.items"
        )
    return skus


async def _snapshots(
    member_id: int, items: Sequence[ItemRequest], skus: dict[int, SkuRow], ctx: PriceContext
) -> list[LineSnapshot]:
    lines = []
    for i, item in enumerate(items):
        sku = skus[item.sku_id]
        price = unit_price(sku, ctx, item.quantity)
        snapshot = None
        if item.campaign is not None:
            handler = handler_for(item.campaign, f"input.items[{i}].campaign")
            offer = await handler.price(member_id, item.campaign, sku, item.quantity, ctx)  # type: ignore[arg-type]
            price, snapshot = offer.unit_price, dict(offer.snapshot)
        lines.append(
            LineSnapshot(
                sku_id=sku.id,
                product_id=sku.product_id,
                title=sku.title,
                spec=sku.spec,
                image_url=sku.image_url,
                unit_price=price,
                quantity=item.quantity,
                campaign=item.campaign,
                campaign_snapshot=snapshot,
            )
        )
    return lines


async def _price(
    member_id: int,
    request: CheckoutRequest,
    items: Sequence[ItemRequest],
    buyer: Buyer,
    skus: dict[int, SkuRow] | None = None,
) -> Preview:
    address = _address(request, buyer)
    who = await shopper_with_growth(buyer.growth)
    ctx = who.price
    skus = skus if skus is not None else await _skus(items)
    lines = await _snapshots(member_id, items, skus, ctx)
    shop_id = next(iter(skus.values())).shop_id
    priced = [
        pricing.PricedLine(
            line.sku_id,
            line.product_id,
            shop_id,
            line.unit_price,
            line.quantity,
            campaign=line.campaign.kind.value if line.campaign else None,
            category_id=skus[line.sku_id].category_id,
            brand_id=skus[line.sku_id].brand_id,
            category_path=skus[line.sku_id].category_path,
        )
        for line in lines
    ]
    settings = get_settings()
    pricing_ctx = PricingContext(
        member_id, who.level_id, ctx, now(), coupons=request.coupons, holds_coupons=buyer.holds_coupons
    )
    quote = await pricing.quote(
        priced,
        pricing_ctx,
        shipping=shipping_rules(settings),
        points=points_rules(settings),
        pickup=request.delivery == DeliveryMethod.PICKUP,
        province=address.province if address is not None else None,
        free_shipping=who.free_shipping,
        points_to_use=request.points_to_use,
    )
    if quote.items_total > pricing.MAX_ORDER_TOTAL:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED,
            f"One order may hold at most {pricing.MAX_ORDER_TOTAL} fen of goods; split it",
            "input.fromCart" if request.from_cart else "input.items",
        )
    return Preview(tuple(lines), quote, address, shop_id, pricing_ctx)


def _check_points(balance: int, quote: pricing.Quote) -> None:
    if quote.points_used > balance:
        raise DomainError(
            ErrorCode.INSUFFICIENT_POINTS,
            f"This order would use {quote.points_used} points; you have {balance}",
            "input.pointsToUse",
        )


def _wanted(items: Sequence[ItemRequest]) -> dict[int, int]:
    wanted: dict[int, int] = {}
    for item in items:
        wanted[item.sku_id] = wanted.get(item.sku_id, 0) + item.quantity
    return wanted


def _check_stock(items: Sequence[ItemRequest], skus: dict[int, SkuRow]) -> None:
    """INSUFFICIENT_STOCK when the stock just read cannot cover the order (the guarded decrement decides)."""
    wanted = _wanted(items)
    for item in items:
        sku = skus[item.sku_id]
        if sku.stock < wanted[item.sku_id]:
            raise DomainError(
                ErrorCode.INSUFFICIENT_STOCK, f"Only {sku.stock} left of {sku.title}", "input.items"
            )


# --- Preview and order -------------------------------------------------------------------------------------


async def checkout_preview(member_id: int, request: CheckoutRequest) -> Preview:
    """What `place_order` would charge now for `request`, refused as `place_order` would refuse it: points
    beyond the balance (INSUFFICIENT_POINTS), stock it cannot get (INSUFFICIENT_STOCK)."""
    items = await _requested(member_id, request)
    buyer = await read_buyer(member_id, "", request.address_id)
    _address(request, buyer)
    skus = await _skus(items)
    preview = await _price(member_id, request, items, buyer, skus)
    _check_points(buyer.points, preview.quote)
    _check_stock(items, skus)
    return preview


def _order_number() -> str:
    return f"{now():%Y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"


def _address_snapshot(address: AddressSnapshot | None) -> dict[str, Any]:
    return {} if address is None else asdict(address)


@dataclass(frozen=True)
class _Written:
    order: Order
    changes: list[StockChange]
    body: str  # what WeChat Pay shows the shopper: the shop and the first line
    campaign_kinds: frozenset[str]


async def _write_order(
    member_id: int,
    request: CheckoutRequest,
    items: list[ItemRequest],
    key: str,
    buyer: Buyer | None = None,
) -> tuple[Order, list[StockChange]]:
    written = await _write(member_id, request, items, key, buyer)
    return written.order, written.changes


async def _write(
    member_id: int,
    request: CheckoutRequest,
    items: list[ItemRequest],
    key: str,
    buyer: Buyer | None = None,
    read: dict[int, SkuRow] | None = None,
) -> _Written:
    # Priced before the transaction: the row locks the order takes (stock last) are held only briefly.
    # `read`: the SKUs as read with the buyer (the first attempt of a "buy now").
    buyer = buyer or await read_buyer(member_id, key, request.address_id)
    address = _address(request, buyer)
    skus = _sellable(items, read) if read is not None else await _skus(items)
    _check_stock(items, skus)
    preview = await _price(member_id, request, items, buyer, skus)
    quote = preview.quote
    if quote.points_used:
        _check_points(buyer.points, quote)
    gifts = await _gifts_wanted(quote)
    number = _order_number()
    fields: dict[str, Any] = {
        "number": number,
        "shop_id": preview.shop_id,
        "member_id": member_id,
        "status": OrderStatus.PENDING_PAYMENT,
        "items_total": quote.items_total,
        "discount": quote.discount,
        "shipping_fee": quote.shipping_fee,
        "points_used": quote.points_used,
        "points_discount": quote.points_discount,
        "payable": quote.payable,
        "discounts": [_discount_json(d, d.amount) for d in quote.discounts],
        "delivery": request.delivery,
        "address": _address_snapshot(address),
        "note": request.note.strip(),
        "idempotency_key": key,
        "pay_deadline": now() + timedelta(minutes=get_settings().order_pay_timeout_minutes),
    }
    rows: list[dict[str, Any]] = [
        {
            "product_id": line.product_id,
            "sku_id": line.sku_id,
            "title": line.title,
            "spec": line.spec,
            "image_url": line.image_url,
            "unit_price": line.unit_price,
            "quantity": line.quantity,
            "line_total": line.line_total,
            "campaign_kind": line.campaign.kind.value if line.campaign else None,
            "campaign_id": line.campaign.id if line.campaign else None,
            "campaign": line.campaign_snapshot or {},
            "discount": quote.line_discounts[i],
            "points_discount": quote.line_points[i],
            "paid_total": quote.line_paid(i),
            "discounts": [_discount_json(d, d.line_amounts[i]) for d in quote.line_breakdown(i)],
        }
        for i, line in enumerate(preview.lines)
    ]
    wanted = _wanted(items)
    if _plain(request, preview, gifts):
        plain = await write_plain_order(fields, rows, wanted)
        if plain.written is None:
            raise await _short_of_stock(items)
        order, taken, given = plain.written.order, plain.taken, {}
    else:
        order, taken, given = await _write_in_transaction(
            member_id, request, items, preview, gifts, fields, rows, wanted
        )
    sold: dict[int, int] = dict(wanted)
    for sku_id, quantity in given.items():
        sold[sku_id] = sold.get(sku_id, 0) + quantity
    changes = [
        StockChange(
            product_id=t.product_id,
            sku_id=t.sku_id,
            stock=t.stock,
            delta=-sold.get(t.sku_id, 0),
            product_stock=t.product_stock,
        )
        for t in taken
    ]
    shop = skus[preview.lines[0].sku_id].shop_name
    title = preview.lines[0].title
    kinds = frozenset(line.campaign.kind.value for line in preview.lines if line.campaign is not None)
    return _Written(order, changes, f"{shop}-{title}" if shop else title, kinds)


def _plain(request: CheckoutRequest, preview: Preview, gifts: dict[int, _GiftWanted]) -> bool:
    """Whether the order is written with nothing else (no campaign, coupon, points, cart lines or gifts), so it
    can be one statement on PostgreSQL."""
    return (
        raw_sql.is_postgres()
        and not request.from_cart
        and not preview.quote.points_used
        and not gifts
        and all(line.campaign is None for line in preview.lines)
        and not any(step_attaches(step, preview.quote, preview.pricing) for step in registered_steps())
    )


async def _short_of_stock(items: Sequence[ItemRequest]) -> DomainError:
    skus = await read_skus(sorted({i.sku_id for i in items}))
    wanted = _wanted(items)
    short = [s for s in sorted(wanted) if s not in skus or skus[s].stock < wanted[s]] or sorted(wanted)
    title = skus[short[0]].title if short[0] in skus else f"SKU {short[0]}"
    return DomainError(ErrorCode.INSUFFICIENT_STOCK, f"Not enough stock of {title}", "input.items")


async def _write_in_transaction(
    member_id: int,
    request: CheckoutRequest,
    items: Sequence[ItemRequest],
    preview: Preview,
    gifts: dict[int, _GiftWanted],
    fields: dict[str, Any],
    rows: list[dict[str, Any]],
    wanted: dict[int, int],
) -> tuple[Order, list[Taken], dict[int, int]]:
    quote = preview.quote
    async with in_transaction():
        written = await write_order(fields, rows, line_ids=any(line.campaign for line in preview.lines))
        order = written.order
        for line_id, line in zip(written.line_ids, preview.lines, strict=False):
            if line.campaign is not None:
                await handler_for(line.campaign).attach(order, line_id, line.campaign, line.quantity)
        for step in registered_steps():
            await step.attach(order, quote, preview.pricing)
        if quote.points_used:
            try:
                await apply_points_change(
                    member_id, -quote.points_used, PointsReason.CHECKOUT, f"order:{order.number}", "checkout"
                )
            except DomainError as exc:
                # Spent elsewhere since the check: the ledger's own refusal, said about the input.
                raise DomainError(exc.code, exc.message, "input.pointsToUse") from None
        if request.from_cart:
            await CartItem.filter(member_id=member_id, sku_id__in=[i.sku_id for i in items]).delete()
        # Stock last: the hot SKU's row stays locked only from here to the commit. Gifts are taken in the same
        # pass (one lock order for every SKU row, bought or given).
        stock = await take_stock(wanted, {sku_id: g.quantity for sku_id, g in gifts.items()})
        if stock.short:
            title = next((line.title for line in preview.lines if line.sku_id == stock.short[0]), "")
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, f"Not enough stock of {title}", "input.items")
        await _gift_lines(order.id, gifts, stock.given)
    return order, stock.taken, stock.given


@dataclass(frozen=True)
class _GiftWanted:
    """A gift SKU the quote gives: all its units (several promotions may give one SKU) and the first giver."""

    sku: SkuRow
    quantity: int
    gift: Gift


async def _gifts_wanted(quote: pricing.Quote) -> dict[int, _GiftWanted]:
    quantities: dict[int, int] = {}
    first: dict[int, Gift] = {}
    for gift in quote.gifts:
        quantities[gift.sku_id] = quantities.get(gift.sku_id, 0) + gift.quantity
        first.setdefault(gift.sku_id, gift)
    if not quantities:
        return {}
    rows = await read_skus(sorted(quantities))
    return {sku_id: _GiftWanted(sku, quantities[sku_id], first[sku_id]) for sku_id, sku in rows.items()}


async def _gift_lines(order_id: int, gifts: dict[int, _GiftWanted], given: dict[int, int]) -> None:
    """Gift lines (a promotion's GIFT_SKU) at no cost, for the gifts whose stock was there: a gift out of stock
    is left out, never a reason to refuse the order."""
    for sku_id, quantity in sorted(given.items()):
        wanted = gifts[sku_id]
        await OrderLine.create(
            order_id=order_id,
            product_id=wanted.sku.product_id,
            sku_id=sku_id,
            title=f"【赠品】{wanted.sku.title}"[:120],
            unit_price=0,
            quantity=quantity,
            line_total=0,
            paid_total=0,
            discounts=[
                {
                    "stage": Stage.THRESHOLD.name,
                    "source": wanted.gift.source.value,
                    "source_id": wanted.gift.source_id,
                    "kind": "GIFT",
                    "title": wanted.gift.title,
                    "amount": 0,
                }
            ],
        )


def _discount_json(d: AppliedDiscount, amount: int) -> dict[str, Any]:
    return {
        "stage": d.stage.name,
        "source": d.source.value,
        "source_id": d.source_id,
        "kind": d.kind,
        "title": d.title,
        "amount": amount,
    }


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= KEY_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"The idempotency key is 1 to {KEY_MAX} characters", "idempotencyKey"
        )


@dataclass(frozen=True)
class Placed:
    """An order `place` returns, and what paying it needs that checkout already read (None when the key had
    already made the order: then prepay reads it all)."""

    order: Order
    new_order: NewOrder | None = None


async def place_order(member_id: int, request: CheckoutRequest, idempotency_key: str) -> Order:
    """Reserve stock and write the order (PENDING_PAYMENT), all or nothing; the same key, the same order.

    Raises INSUFFICIENT_STOCK, INSUFFICIENT_POINTS, OFF_SHELF, NOT_FOUND (SKU, address), LIMIT_EXCEEDED and
    BAD_USER_INPUT; nothing is written then. A zero-amount order is marked paid after the commit.
    """
    return (await place(member_id, request, idempotency_key)).order


async def place(member_id: int, request: CheckoutRequest, idempotency_key: str) -> Placed:
    """`place_order`, also answering what `request_payment` needs of a new order."""
    _check_key(idempotency_key)
    if not request.from_cart:
        await campaigns.turn_away(
            member_id, [(i.campaign, i.quantity) for i in request.items if i.campaign is not None]
        )
    # "Buy now" names its SKUs: they are read with the buyer, in one statement on PostgreSQL.
    wanted = () if request.from_cart else sorted({i.sku_id for i in request.items})
    buyer, read = await read_buyer_and_skus(member_id, idempotency_key, request.address_id, wanted)
    if buyer.existing_order_id is not None:
        existing = await Order.get_or_none(id=buyer.existing_order_id)
        if existing is not None:
            return Placed(existing)
    items = await _requested(member_id, request)
    reserved = await _reserve_campaigns(member_id, items, idempotency_key)
    try:
        for _ in range(_NUMBER_ATTEMPTS):
            try:
                # The SKUs read with the buyer serve the first attempt only; a retry reads them again.
                first, read = read, None
                written = await retry_when_busy(
                    lambda first=first: _write(member_id, request, items, idempotency_key, buyer, first)
                )
                break
            except IntegrityError:
                # The same key committed first by a concurrent request (ours rolled back), or a number clash.
                existing = await Order.get_or_none(member_id=member_id, idempotency_key=idempotency_key)
                if existing is not None:
                    await _unreserve_campaigns(member_id, reserved, idempotency_key)
                    return Placed(existing)
        else:
            raise DomainError(ErrorCode.CONFLICT, "Could not number the order; try again", "idempotencyKey")
    except BaseException:
        await _unreserve_campaigns(member_id, reserved, idempotency_key)
        raise
    await stock_changed(written.changes)
    order = written.order
    if order.payable == 0:
        return Placed(await _mark_free_order_paid(order))
    return Placed(order, NewOrder(buyer.openid, written.body, written.campaign_kinds))


async def _reserve_campaigns(member_id: int, items: Sequence[ItemRequest], key: str) -> list[ItemRequest]:
    """Each campaign takes its allotment before the transaction; on a refusal the ones taken are given back."""
    taken: list[ItemRequest] = []
    try:
        for i, item in enumerate(items):
            if item.campaign is None:
                continue
            handler = handler_for(item.campaign, f"input.items[{i}].campaign")
            await handler.reserve(member_id, item.campaign, item.sku_id, item.quantity, key)
            taken.append(item)
    except BaseException:
        await _unreserve_campaigns(member_id, taken, key)
        raise
    return taken


async def _unreserve_campaigns(member_id: int, taken: Sequence[ItemRequest], key: str) -> None:
    for item in taken:
        assert item.campaign is not None
        try:
            await handler_for(item.campaign).unreserve(
                member_id, item.campaign, item.sku_id, item.quantity, key
            )
        except Exception:
            log.exception("could not give back %s for SKU %s", item.campaign, item.sku_id)


async def _mark_free_order_paid(order: Order) -> Order:
    # Its own transaction through the state machine, which records the transition and announces it.
    return await transition(order.id, OrderStatus.PAID, actor=ActorKind.SYSTEM, reason="zero amount")


# --- Payment -----------------------------------------------------------------------------------------------


async def member_order(member_id: int, order_id: int) -> Order:
    order = await Order.get_or_none(id=order_id, member_id=member_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No order has this ID", "orderId")
    return order


async def request_payment(order: Order, new_order: NewOrder | None = None) -> PayParams:
    """WeChat Pay JSAPI parameters for a pending order (a network call: only ever after a commit).

    `new_order` is what `place` answered with an order it just wrote (nothing is read again then).
    PAYMENT_UNAVAILABLE when WeChat Pay cannot be reached; the order stays pending and `orderPay` asks again.
    ORDER_ALREADY_PAID / ORDER_NOT_PAYABLE come from services.payments.wechat_pay.
    """
    if new_order is not None:
        openid = new_order.openid
    else:
        openid = await Member.filter(id=order.member_id).first().values_list("openid", flat=True)  # type: ignore[attr-defined]
    try:
        return await wechat_pay.prepay(order, str(openid or ""), new_order=new_order)
    except DomainError:
        raise
    except Exception:
        log.exception("prepay failed for order %s", order.number)
        raise DomainError(
            ErrorCode.PAYMENT_UNAVAILABLE, "WeChat Pay is unavailable; pay again shortly"
        ) from None

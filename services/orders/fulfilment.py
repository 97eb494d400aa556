"""What members and staff do with orders after checkout: cancel, confirm receipt, ship (one or a batch), and tell
WeChat and the member about the shipment.

Every status change goes through `services.orders.states`; this module checks who may ask for it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from infra import wechat
from infra.clock import SHOP_TZ
from infra.settings import get_settings
from models import (
    ActorKind,
    DeliveryMethod,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
)
from services.errors import DomainError, ErrorCode
from services.orders import states as order_states
from services.orders.queries import owned_order

log = logging.getLogger("lianmall.orders")

CARRIER_MAX = 32
TRACKING_MAX = 64
REASON_MAX = 200
BATCH_MAX = 200


@dataclass(frozen=True)
class ShipRow:
    order_id: int
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class ShipResult:
    order_id: int
    order: Order | None
    error: DomainError | None


# --- Member actions ------------------------------------------------------------------------------------------


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"The reason is at most {REASON_MAX} characters", "reason"
        )
    return reason


async def cancel_order(member_id: int, order_id: int, reason: str = "") -> Order:
    """The member cancels their unpaid order. Raises NOT_FOUND, CONFLICT (no longer unpaid)."""
    reason = _reason(reason)
    order = await owned_order(member_id, order_id)
    if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED):
        raise DomainError(
            ErrorCode.CONFLICT, "Only an unpaid order can be cancelled; ask for an after-sale instead", "id"
        )
    return await order_states.transition(
        order_id,
        OrderStatus.CANCELLED,
        actor=ActorKind.MEMBER,
        actor_id=member_id,
        reason=reason or "买家取消",
    )


async def staff_cancel(order_id: int, staff_id: int, reason: str) -> Order:
    """Staff cancel an unpaid order (a paid one is cancelled by refunding it in full)."""
    reason = _reason(reason)
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order", "id")
    if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED):
        raise DomainError(ErrorCode.CONFLICT, "A paid order is cancelled by refunding it in full", "id")
    return await order_states.transition(
        order_id, OrderStatus.CANCELLED, actor=ActorKind.STAFF, actor_id=staff_id, reason=reason or "商家取消"
    )


async def confirm_receipt(member_id: int, order_id: int) -> Order:
    """The member says the parcel arrived. Raises NOT_FOUND, CONFLICT (not shipped)."""
    await owned_order(member_id, order_id)
    return await order_states.transition(
        order_id, OrderStatus.RECEIVED, actor=ActorKind.MEMBER, actor_id=member_id, reason="买家确认收货"
    )


# --- Shipping ------------------------------------------------------------------------------------------------


def _ship_problems(carrier: str, tracking_number: str) -> DomainError | None:
    if not 1 <= len(carrier) <= CARRIER_MAX:
        return DomainError(
            ErrorCode.BAD_USER_INPUT, f"The carrier is 1 to {CARRIER_MAX} characters", "carrier"
        )
    if not 1 <= len(tracking_number) <= TRACKING_MAX:
        return DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"The tracking number is 1 to {TRACKING_MAX} characters",
            "trackingNumber",
        )
    return None


async def _ship(
    order_id: int, carrier: str, tracking_number: str, staff_id: int | None
) -> tuple[Order, bool]:
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    problem = _ship_problems(carrier, tracking_number)
    if problem is not None:
        raise problem
    order, moved = await order_states.move(
        order_id,
        OrderStatus.SHIPPED,
        actor=ActorKind.STAFF,
        actor_id=staff_id,
        reason=f"{carrier} {tracking_number}",
        carrier=carrier,
        tracking_number=tracking_number,
    )
    if not moved and (order.carrier, order.tracking_number) != (carrier, tracking_number):
        raise DomainError(
            ErrorCode.CONFLICT, f"Already shipped with {order.carrier} {order.tracking_number}", "id"
        )
    return order, moved


async def ship_order(order_id: int, carrier: str, tracking_number: str, staff_id: int | None) -> Order:
    """Ship a paid order; repeating the same shipment is a no-op. Tells the member and WeChat afterwards.

    Raises BAD_USER_INPUT, NOT_FOUND, CONFLICT (not paid, or already shipped with another tracking number).
    """
    order, moved = await _ship(order_id, carrier, tracking_number, staff_id)
    if moved:
        await notify_shipped(order)
    return order


async def ship_orders(rows: list[ShipRow], staff_id: int | None) -> list[ShipResult]:
    """Ship each row on its own: a failing row is reported in its result and does not stop the others."""
    if len(rows) > BATCH_MAX:
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {BATCH_MAX} orders per batch", "rows")
    results: list[ShipResult] = []
    shipped: list[Order] = []
    for row in rows:
        try:
            order, moved = await _ship(row.order_id, row.carrier, row.tracking_number, staff_id)
        except DomainError as exc:
            results.append(ShipResult(row.order_id, None, exc))
            continue
        results.append(ShipResult(row.order_id, order, None))
        if moved:
            shipped.append(order)
    await asyncio.gather(*(notify_shipped(order) for order in shipped))
    return results


# --- Telling WeChat and the member ---------------------------------------------------------------------------


def ship_template_id() -> str:
    """The subscribe-message template for "your order has shipped" (WECHAT_SHIP_TEMPLATE_ID)."""
    return get_settings().wechat_ship_template_id


def _masked_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else phone


def _rfc3339(at: datetime) -> str:
    return at.astimezone(SHOP_TZ).isoformat(timespec="milliseconds")


async def _shipping_info(order: Order, openid: str) -> dict[str, object]:
    if order.transaction_id:
        key: dict[str, object] = {"order_number_type": 2, "transaction_id": order.transaction_id}
    else:
        payment = (
            await Payment.filter(order_id=order.id, status=PaymentStatus.SUCCEEDED).order_by("-id").first()
        )
        key = {
            "order_number_type": 1,
            "mchid": get_settings().wechat_mch_id,
            "out_trade_no": payment.out_trade_no if payment else order.number,
        }
        if payment and payment.transaction_id:
            key = {"order_number_type": 2, "transaction_id": payment.transaction_id}
    titles = await OrderLine.filter(order_id=order.id).order_by("id").values_list("title", flat=True)
    phone = str((order.address or {}).get("phone", ""))
    return {
        "order_key": key,
        "logistics_type": 4 if order.delivery == DeliveryMethod.PICKUP else 1,
        "delivery_mode": 1,
        "shipping_list": [
            {
                "tracking_no": order.tracking_number,
                "express_company": order.carrier,
                "item_desc": "、".join(str(t) for t in titles)[:120],
                "contact": {"receiver_contact": _masked_phone(phone)},
            }
        ],
        "upload_time": _rfc3339(order.shipped_at or order.updated_at),
        "payer": {"openid": openid},
    }


async def notify_shipped(order: Order) -> None:
    """The shipping-info upload WeChat requires and the member's subscribe message. Failures are logged:
    the order has shipped whatever WeChat says."""
    member = await Member.get_or_none(id=order.member_id)  # type: ignore[attr-defined]
    if member is None or not member.openid:
        return
    try:
        await wechat.upload_shipping_info(await _shipping_info(order, member.openid))
    except Exception:
        log.warning("uploading the shipping info of order %s to WeChat failed", order.number, exc_info=True)
    template = ship_template_id()
    if not template:
        log.info("WECHAT_SHIP_TEMPLATE_ID is not set: no shipping message for order %s", order.number)
        return
    data = {
        "character_string1": {"value": order.number},
        "thing2": {"value": order.carrier[:20]},
        "character_string3": {"value": order.tracking_number[:32]},
        "time4": {
            "value": (order.shipped_at or order.updated_at).astimezone(SHOP_TZ).strftime("%Y-%m-%d %H:%M")
        },
    }
    try:
        await wechat.send_subscribe_message(
            member.openid, template, data, page=f"pages/order/detail?id={order.id}"
        )
    except Exception:
        log.warning("sending the shipping message of order %s failed", order.number, exc_info=True)

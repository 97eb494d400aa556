"""Presale orders: bought on a deposit, paid in full in the balance window, forfeited when it closes unpaid.

Checkout item `campaign: {kind: PRESALE, id: <Presale ID>}`. The line's unit price is what the shopper pays in
all per unit (`price - deposit_worth + deposit`); the order's payable is split in two WeChat Pay payments by
this module's payment plan (services.payments.plans): DEPOSIT (`deposit` × quantity) within the unpaid
timeout, then BALANCE (the rest of the payable: shipping included, points and promotions deducted) inside the
balance window. The order stays PENDING_PAYMENT with `paid_amount` = the deposit and `pay_deadline` = the end of
the balance window, so the sweeper's ordinary unpaid timeout ends an unpaid balance: the order is CANCELLED,
its stock and points go back, and the deposit is FORFEITED (kept, as the shopper was shown before paying).
The balance payment moves the order to PAID like any payment.

Refund rules by stage: before the deposit, a cancel is an unpaid cancel. With the deposit paid, neither the
shopper nor the unpaid timeout (before the window closes) can cancel it (a transition guard): only the shop
can, refunding the deposit (`refund_deposit`). Once the balance is paid, the order is refunded like any other
(staff refunds, after-sales, a failed group's refunds) and its money is in two payments: a refund takes from
the balance payment first and whatever it needs beyond what is left of the balance from the deposit payment,
as two WeChat refunds (services.payments.refunds); a whole-order refund returns both in full.

When the balance window opens, the sweeper reminds each member with a paid deposit once by subscribe message
(WECHAT_PRESALE_BALANCE_TEMPLATE_ID): the reminder is claimed by a guarded update before it is sent, so no
process sends it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from infra import wechat
from infra.clock import SHOP_TZ, now
from infra.settings import get_settings
from models import (
    ActorKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStage,
    Presale,
    PresaleOrder,
    PresaleQuota,
    PresaleStage,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.marketing import member_quota
from services.marketing.presale.setup import forfeit_notice, takes_deposits
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.sweeper import register_sweep_job
from services.payments import plans
from services.payments.refunds import EXTRA_PAYMENT_PREFIX, start_refund

log = logging.getLogger("lianmall.presale")

NODE = "Presale"
FIELD = "input.items[0].campaign.id"
BATCH = 200


# --- Checkout ----------------------------------------------------------------------------------------------


async def _presale(presale_id: int) -> Presale:
    presale = await Presale.get_or_none(id=presale_id)
    if presale is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No presale has this ID", FIELD)
    return presale


def unit_total(presale: Presale) -> int:
    """What one unit costs the shopper in all: the deposit, then the price less what the deposit is worth."""
    return presale.price - presale.deposit_worth + presale.deposit


class PresaleCampaign:
    """The PRESALE campaign handler (services.orders.campaigns)."""

    kind = CampaignKind.PRESALE

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        if ref.node != NODE:
            raise DomainError(ErrorCode.INVALID_ID, "A presale item names a Presale", FIELD)
        presale = await _presale(ref.id)
        if presale.sku_id != sku.id:  # type: ignore[attr-defined]
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "This presale is for another SKU", "input.items[0].skuId"
            )
        if not takes_deposits(presale):
            raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This presale takes no deposits now", FIELD)
        if quantity > presale.per_member_limit:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"At most {presale.per_member_limit} per member in this presale",
                "input.items[0].quantity",
            )
        return CampaignPrice(unit_total(presale), _snapshot(presale))

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Nothing before the transaction: the quota is a guarded update inside it."""

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Nothing: what `attach` took rolled back with the order."""

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        if await OrderLine.filter(order_id=order.id).count() > 1:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT,
                "A presale is ordered on its own, without other items",
                "input.items",
            )
        presale = await _presale(ref.id)
        member_id: int = order.member_id  # type: ignore[attr-defined]
        deposit = presale.deposit * quantity
        balance = order.payable - deposit
        if balance <= 0:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "Points or discounts leave no balance to pay; use fewer", "input"
            )
        await member_quota.take(
            PresaleQuota, {"presale_id": presale.id}, member_id, quantity, presale.per_member_limit, "presale"
        )
        await PresaleOrder.create(
            presale_id=presale.id,
            order_id=order.id,
            member_id=member_id,
            quantity=quantity,
            deposit=deposit,
            deposit_worth=presale.deposit_worth * quantity,
            balance=balance,
        )


def _snapshot(presale: Presale) -> dict[str, Any]:
    return {
        "presaleId": presale.id,
        "title": presale.title,
        "price": presale.price,
        "deposit": presale.deposit,
        "depositWorth": presale.deposit_worth,
        "balanceStartsAt": presale.balance_starts_at.isoformat(),
        "balanceEndsAt": presale.balance_ends_at.isoformat(),
        "forfeitNotice": forfeit_notice(presale),
    }


# --- The payment plan --------------------------------------------------------------------------------------


async def _due(order: Order) -> plans.Due | None:
    row = await PresaleOrder.get_or_none(order_id=order.id).select_related("presale")
    if row is None:
        return None
    if row.stage == PresaleStage.DEPOSIT_DUE:
        if now() >= row.presale.deposit_ends_at:
            raise DomainError(
                ErrorCode.ORDER_NOT_PAYABLE, "The time to pay deposits for this presale is over"
            )
        return plans.Due(PaymentStage.DEPOSIT, row.deposit)
    if row.stage == PresaleStage.DEPOSIT_PAID:
        at = now()
        presale = row.presale
        if at < presale.balance_starts_at:
            raise DomainError(
                ErrorCode.ORDER_NOT_PAYABLE,
                f"The balance can be paid from {presale.balance_starts_at.astimezone(SHOP_TZ):%Y-%m-%d %H:%M}",
            )
        if at >= presale.balance_ends_at:
            raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "The time to pay the balance is over")
        return plans.Due(PaymentStage.BALANCE, row.balance)
    raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "This presale order is not waiting for payment")


async def _deposit_paid(order: Order, payment: Payment) -> bool:
    row = await PresaleOrder.get_or_none(order_id=order.id).select_related("presale")
    if row is None:
        return False
    if row.deposit_payment_id == payment.id:
        return True  # a repeated notification
    if payment.amount != row.deposit:
        return False

    async def record() -> bool:
        async with in_transaction():
            # Locks the presale row first, as the CANCELLED guard does: a deposit and an unpaid-timeout cancel
            # of the same order go one after the other, and exactly one of them wins.
            moved = await PresaleOrder.filter(id=row.id, stage=PresaleStage.DEPOSIT_DUE).update(
                stage=PresaleStage.DEPOSIT_PAID, deposit_payment_id=payment.id, deposit_paid_at=now()
            )
            if not moved:
                return False
            kept = await Order.filter(id=order.id, status=OrderStatus.PENDING_PAYMENT).update(
                paid_amount=payment.amount, pay_deadline=row.presale.balance_ends_at
            )
            if not kept:
                raise _Gone()
            return True

    try:
        return await record()
    except _Gone:
        return False  # cancelled meanwhile: the deposit goes back as money paid for a cancelled order


class _Gone(Exception):
    """The order was cancelled while its deposit was being recorded (rolls the recording back)."""


async def _earlier_payments(order: Order) -> list[int]:
    # Only once the balance is paid is the deposit part of the order's money (before, a refunded deposit is
    # money of a cancelled order: `refund_deposit`).
    row = await PresaleOrder.get_or_none(order_id=order.id)
    if row is None or row.stage != PresaleStage.BALANCE_PAID or row.deposit_payment_id is None:
        return []
    return [row.deposit_payment_id]


plans.register_payment_plan(
    plans.PaymentPlan(
        due=_due,
        deposit_paid=_deposit_paid,
        campaign_kind=CampaignKind.PRESALE.value,
        earlier_payments=_earlier_payments,
    )
)


# --- Order states ------------------------------------------------------------------------------------------


async def _cancel_guard(order: Order, to: OrderStatus) -> None:
    row = await PresaleOrder.filter(order_id=order.id).select_for_update().first()
    if row is None or row.stage != PresaleStage.DEPOSIT_PAID:
        return
    # Read again now that the row is locked: a deposit recorded meanwhile moved the deadline to the window's end.
    deadline = await Order.filter(id=order.id).first().values_list("pay_deadline", flat=True)
    if deadline is not None and deadline > now():
        raise DomainError(
            ErrorCode.CONFLICT,
            "The deposit is paid: pay the balance in its window (unpaid, the deposit is forfeited when it closes)",
            "id",
        )


async def _on_cancelled(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    row = await PresaleOrder.get_or_none(order_id=order.id)
    if row is None:
        return
    stage = PresaleStage.FORFEITED if row.stage == PresaleStage.DEPOSIT_PAID else PresaleStage.CANCELLED
    if row.stage in (PresaleStage.DEPOSIT_DUE, PresaleStage.DEPOSIT_PAID):
        await PresaleOrder.filter(id=row.id, stage=row.stage).update(stage=stage, ended_at=now())
    await member_quota.give_back(
        PresaleQuota,
        {"presale_id": row.presale_id},  # type: ignore[attr-defined]
        row.member_id,
        row.quantity,
    )


async def _on_paid(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    row = await PresaleOrder.get_or_none(order_id=order.id)
    if row is None:
        return
    payment = await Payment.get_or_none(transaction_id=order.transaction_id) if order.transaction_id else None
    await PresaleOrder.filter(id=row.id, stage=PresaleStage.DEPOSIT_PAID).update(
        stage=PresaleStage.BALANCE_PAID,
        balance_paid_at=now(),
        balance_payment_id=payment.id if payment else None,
    )


# --- The shop refunds a deposit ------------------------------------------------------------------------------


async def refund_deposit(order_id: int, staff_id: int | None) -> PresaleOrder:
    """The shop cannot deliver: cancel a presale order whose deposit is paid (stock goes back) and refund the
    deposit in full through WeChat Pay. Repeating it refunds nothing twice (the refund is keyed by the order).

    Raises NOT_FOUND, REFUND_NOT_ALLOWED (no deposit paid, or the balance paid: refund the order instead).
    """
    row = await PresaleOrder.get_or_none(order_id=order_id)
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No presale order has this ID", "orderId")
    if row.stage == PresaleStage.DEPOSIT_PAID:
        await PresaleOrder.filter(id=row.id, stage=PresaleStage.DEPOSIT_PAID).update(
            stage=PresaleStage.CANCELLED, ended_at=now()
        )
        row = await PresaleOrder.get(id=row.id)
        try:
            await states.transition(
                order_id,
                OrderStatus.CANCELLED,
                actor=ActorKind.STAFF,
                actor_id=staff_id,
                reason="预售取消，退定金",
            )
        except DomainError:
            pass  # cancelled already
    if row.stage != PresaleStage.CANCELLED or row.deposit_payment_id is None:
        raise DomainError(
            ErrorCode.REFUND_NOT_ALLOWED,
            f"The deposit cannot be refunded at stage {row.stage.value}",
            "orderId",
        )
    payment = await Payment.get(id=row.deposit_payment_id)
    await start_refund(
        order_id,
        payment.amount,
        [],
        f"{EXTRA_PAYMENT_PREFIX}{payment.out_trade_no} 预售定金退款",
        key=f"presale-deposit:{order_id}",
        payment_id=payment.id,
    )
    return row


# --- The sweeper: balance reminders --------------------------------------------------------------------------


async def remind_balances(at: datetime) -> int:
    """Tell every member with a paid deposit, once, that the balance window has opened."""
    due = (
        await PresaleOrder.filter(
            stage=PresaleStage.DEPOSIT_PAID,
            reminded_at__isnull=True,
            presale__balance_starts_at__lte=at,
            presale__balance_ends_at__gt=at,
        )
        .select_related("presale")
        .limit(BATCH)
    )
    template = get_settings().wechat_presale_balance_template_id
    sent = 0
    for row in due:
        claimed = await PresaleOrder.filter(id=row.id, reminded_at__isnull=True).update(reminded_at=at)
        if not claimed:
            continue  # another process took it
        if not template:
            log.info(
                "WECHAT_PRESALE_BALANCE_TEMPLATE_ID is not set: no balance reminder for order %s",
                row.order_id,
            )
            continue
        member = await Member.get_or_none(id=row.member_id)
        if member is None or not member.openid:
            continue
        ends = row.presale.balance_ends_at.astimezone(SHOP_TZ)
        data = {
            "thing1": {"value": row.presale.title[:20]},
            "amount2": {"value": f"{row.balance / 100:.2f}"},
            "time3": {"value": ends.strftime("%Y-%m-%d %H:%M")},
            "thing4": {"value": "尾款已可支付，逾期定金不退"},
        }
        try:
            await wechat.send_subscribe_message(
                member.openid, template, data, page=f"pages/order/detail?id={row.order_id}"
            )
            sent += 1
        except Exception:
            log.warning("the balance reminder of order %s was not sent", row.order_id, exc_info=True)
    return sent


register_campaign(PresaleCampaign())
states.register_transition_guard(OrderStatus.CANCELLED, _cancel_guard)
states.register_entry_hook(OrderStatus.CANCELLED, _on_cancelled)
states.register_entry_hook(OrderStatus.PAID, _on_paid)
register_sweep_job("presale-reminders", remind_balances)

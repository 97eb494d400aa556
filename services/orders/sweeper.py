"""Time-driven order transitions: unpaid timeout, automatic receipt, completion after the after-sale window;
refunds WeChat Pay never accepted, asked again; payments and refunds no notification settled, asked about at
WeChat Pay (services.payments.reconcile), first of all, so a paid order is never cancelled for a lost
notification.

Nothing is kept in memory: each sweep finds due orders by their indexed deadline columns, so a restarted
process (or any other one) picks up whatever was due. Every process sweeps; the guarded update in
`order_states.transition` lets exactly one of them make each transition, and the others see a no-op or a
CONFLICT, which a sweep skips. A refund is asked again with its own out_refund_no, which WeChat refunds once
however many processes ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.expressions import Q

from infra.clock import now as clock_now
from infra.db import database_unavailable
from infra.settings import get_settings
from models import (
    ActorKind,
    AfterSale,
    AfterSaleStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from services.errors import DomainError
from services.members.tokens import purge_retired_refresh_tokens
from services.orders import states as order_states
from services.payments import reconcile, refunds

log = logging.getLogger("lianmall.sweeper")

BATCH = 500
OPEN_AFTER_SALES = (
    AfterSaleStatus.REQUESTED,
    AfterSaleStatus.APPROVED,
    AfterSaleStatus.RETURNING,
    AfterSaleStatus.REFUNDING,
)


@dataclass
class SweepReport:
    cancelled: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    refunds_retried: list[int] = field(default_factory=list)
    # Payments and refunds settled (or closed) by asking WeChat Pay.
    payments_reconciled: list[int] = field(default_factory=list)
    refunds_reconciled: list[int] = field(default_factory=list)
    skipped: int = 0
    # What each registered job did: its name → how many things it moved.
    jobs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """Orders in `status` whose `deadline` column has passed go to `to`."""

    status: OrderStatus
    deadline: str
    to: OrderStatus
    reason: str
    report: Callable[[SweepReport], list[int]]


@dataclass(frozen=True)
class RefundRetryRule:
    """Refunds still PENDING `after` their creation that WeChat Pay never accepted (no refund_id: the
    `refund.apply` call failed or went unanswered) are applied again with the same out_refund_no."""

    after: timedelta
    report: Callable[[SweepReport], list[int]]


@dataclass(frozen=True)
class AskWeChatRule:
    """Payments still PENDING PAY_QUERY_AFTER_SECONDS after they were made (and since they were last asked
    about), or whose order is due for the unpaid timeout, and refunds WeChat accepted that are still PENDING as
    long: asked about at WeChat Pay and settled by its answer (services.payments.reconcile)."""


RULES: tuple[Rule | RefundRetryRule | AskWeChatRule, ...] = (
    AskWeChatRule(),
    Rule(
        OrderStatus.PENDING_PAYMENT,
        "pay_deadline",
        OrderStatus.CANCELLED,
        "unpaid timeout",
        lambda r: r.cancelled,
    ),
    Rule(OrderStatus.SHIPPED, "auto_receive_at", OrderStatus.RECEIVED, "auto receipt", lambda r: r.received),
    Rule(
        OrderStatus.RECEIVED,
        "after_sale_deadline",
        OrderStatus.COMPLETED,
        "after-sale window closed",
        lambda r: r.completed,
    ),
    RefundRetryRule(timedelta(minutes=5), lambda r: r.refunds_retried),
)


SweepJob = Callable[[datetime], Awaitable[int]]
_jobs: dict[str, SweepJob] = {}


def register_sweep_job(name: str, job: SweepJob) -> None:
    """Run `job(at)` on every sweep, after the order rules; it returns how many things it moved.

    How higher domains (marketing, live, content) get time-driven work done without the sweeper importing them.
    A job must keep nothing in memory and be safe on every process at once, like the rules here: find what is due
    by indexed columns and move each item with a guarded update. A job that raises is logged; the others still run.
    """
    _jobs[name] = job


def unregister_sweep_job(name: str) -> None:
    _jobs.pop(name, None)


# Retired refresh tokens (reuse detection) are kept for as long as a refresh token lives.
register_sweep_job("retired-refresh-tokens", purge_retired_refresh_tokens)


async def _due(rule: Rule, at: datetime) -> list[int]:
    ids = await (
        Order.filter(status=rule.status, **{f"{rule.deadline}__lte": at})
        .order_by(rule.deadline)
        .limit(BATCH)
        .values_list("id", flat=True)
    )
    if rule.to != OrderStatus.COMPLETED or not ids:
        return list(ids)
    # An order with an after-sale still open completes only once that after-sale is settled.
    held = set(
        await AfterSale.filter(order_id__in=list(ids), status__in=OPEN_AFTER_SALES).values_list(
            "order_id", flat=True
        )
    )
    return [i for i in ids if i not in held]


async def sweep_once(at: datetime | None = None) -> SweepReport:
    """Make every transition due at `at` (default: now); safe to run on every process at once."""
    at = at or clock_now()
    report = SweepReport()
    for rule in RULES:
        if isinstance(rule, AskWeChatRule):
            await _ask_wechat(at, report)
            continue
        if isinstance(rule, RefundRetryRule):
            await _retry_refunds(rule, at, report)
            continue
        for order_id in await _due(rule, at):
            try:
                _, moved = await order_states.move(
                    order_id, rule.to, actor=ActorKind.SYSTEM, reason=rule.reason
                )
            except DomainError:
                moved = False  # another process or a member got there first
            except Exception:
                log.exception("sweeping order %s to %s failed", order_id, rule.to)
                moved = False
            if moved:
                rule.report(report).append(order_id)
            else:
                report.skipped += 1
    for name, job in list(_jobs.items()):
        try:
            report.jobs[name] = await job(at)
        except Exception:
            log.exception("sweep job %s failed", name)
    return report


async def _retry_refunds(rule: RefundRetryRule, at: datetime, report: SweepReport) -> None:
    due = await (
        Refund.filter(status=RefundStatus.PENDING, refund_id__isnull=True, created_at__lte=at - rule.after)
        .order_by("id")
        .limit(BATCH)
    )
    for refund in due:
        try:
            await refunds.apply(refund)
        except DomainError as exc:
            # PAYMENT_UNAVAILABLE: the next sweep asks again; REFUND_FAILED: apply marked it FAILED.
            log.warning("refund %s asked again: %s", refund.out_refund_no, exc.code)
            report.skipped += 1
            continue
        except Exception:
            log.exception("asking WeChat Pay again for refund %s failed", refund.out_refund_no)
            report.skipped += 1
            continue
        rule.report(report).append(refund.id)


async def _ask_wechat(at: datetime, report: SweepReport) -> None:
    settings = get_settings()
    if not (settings.wechat_appid and settings.wechat_mch_id and settings.wechat_pay_api_key):
        return  # no merchant: nothing was ever paid through WeChat Pay here
    asked_before = at - timedelta(seconds=settings.pay_query_after_seconds)
    not_asked_lately = Q(checked_at__isnull=True) | Q(checked_at__lte=asked_before)
    payments = await (
        Payment.filter(not_asked_lately, status=PaymentStatus.PENDING, created_at__lte=asked_before)
        .order_by("id")
        .limit(BATCH)
    )
    # Before the unpaid timeout cancels an order, whatever its payment's age: was it paid after all?
    due = await Payment.filter(
        status=PaymentStatus.PENDING,
        order__status=OrderStatus.PENDING_PAYMENT,
        order__pay_deadline__lte=at,
    ).limit(BATCH)
    seen = {p.id for p in payments}
    payments += [p for p in due if p.id not in seen]
    for payment in payments:
        try:
            outcome = await reconcile.reconcile_payment(payment, at)
        except DomainError as exc:
            log.warning("asking WeChat Pay about payment %s: %s", payment.out_trade_no, exc.code)
            report.skipped += 1
            continue
        except Exception:
            log.exception("asking WeChat Pay about payment %s failed", payment.out_trade_no)
            report.skipped += 1
            continue
        if outcome in ("paid", "closed"):
            report.payments_reconciled.append(payment.id)
    refunds = await (
        Refund.filter(
            not_asked_lately,
            status=RefundStatus.PENDING,
            refund_id__isnull=False,
            created_at__lte=asked_before,
        )
        .order_by("id")
        .limit(BATCH)
    )
    for refund in refunds:
        try:
            outcome = await reconcile.reconcile_refund(refund, at)
        except DomainError as exc:
            log.warning("asking WeChat Pay about refund %s: %s", refund.out_refund_no, exc.code)
            report.skipped += 1
            continue
        except Exception:
            log.exception("asking WeChat Pay about refund %s failed", refund.out_refund_no)
            report.skipped += 1
            continue
        if outcome == "settled":
            report.refunds_reconciled.append(refund.id)


def sweep_interval() -> float:
    return get_settings().sweep_interval_seconds


async def run_sweeper(
    interval: float | None = None, sweep: Callable[[], Awaitable[SweepReport]] = sweep_once
) -> None:
    """Sweep every `interval` seconds until cancelled; a failed sweep is logged and the next one runs."""
    pause = interval if interval is not None else sweep_interval()
    while True:
        try:
            report = await sweep()
            moved_by_jobs = {name: n for name, n in report.jobs.items() if n}
            if (
                report.cancelled
                or report.received
                or report.completed
                or report.refunds_retried
                or report.payments_reconciled
                or report.refunds_reconciled
                or moved_by_jobs
            ):
                log.info(
                    "sweep: %d cancelled, %d received, %d completed, %d refunds asked again, "
                    "%d payments and %d refunds settled by asking WeChat Pay; jobs %s",
                    len(report.cancelled),
                    len(report.received),
                    len(report.completed),
                    len(report.refunds_retried),
                    len(report.payments_reconciled),
                    len(report.refunds_reconciled),
                    moved_by_jobs,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if database_unavailable(exc):  # said in one line: /healthz says it too
                log.warning("order sweep skipped: the database is unavailable (%s)", exc)
            else:
                log.exception("order sweep failed")
        await asyncio.sleep(pause)


def start_sweeper() -> asyncio.Task[None]:
    return asyncio.create_task(run_sweeper(), name="order-sweeper")


async def stop_sweeper(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

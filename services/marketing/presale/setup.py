"""Presales as staff set them up: create (scheduled by its windows), stop, list with live numbers.

Money per unit in fen: `price` is the presale price, `deposit` what the shopper pays first, `deposit_worth` what
that deposit takes off the price (定金膨胀: pay 5000, worth 10000). The balance per unit is
`price - deposit_worth`; the shopper pays `deposit + price - deposit_worth` in all. Every bad setup is refused
with a coded error on its own field, all at once, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.functions import Count

from infra.clock import now
from models import Presale, PresaleOrder, PresaleStage, Sku
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.orders.cart import purchase_limit

TITLE_MAX = 60
MAX_RUN = timedelta(days=366)


@dataclass(frozen=True)
class PresaleDraft:
    sku_id: int
    title: str
    price: int
    deposit: int
    deposit_worth: int
    per_member_limit: int
    deposit_starts_at: datetime
    deposit_ends_at: datetime
    balance_starts_at: datetime
    balance_ends_at: datetime


@dataclass(frozen=True)
class PresaleStats:
    """Live numbers of one presale: its orders by stage."""

    deposits_due: int = 0
    deposits_paid: int = 0
    balances_paid: int = 0
    forfeited: int = 0
    cancelled: int = 0


def _problems(draft: PresaleDraft, sku: Sku | None) -> list[DomainError]:
    bad = ErrorCode.BAD_USER_INPUT
    found: list[DomainError] = []
    if sku is None:
        found.append(DomainError(ErrorCode.NOT_FOUND, "No SKU has this ID", "input.skuId"))
    if not 1 <= len(draft.title.strip()) <= TITLE_MAX:
        found.append(DomainError(bad, f"The title is 1 to {TITLE_MAX} characters", "input.title"))
    if draft.price < 2:
        found.append(DomainError(bad, "The presale price is at least 2 fen", "input.price"))
    if not 1 <= draft.deposit < max(draft.price, 1):
        found.append(DomainError(bad, "The deposit is at least 1 fen and below the price", "input.deposit"))
    if draft.deposit_worth < draft.deposit:
        found.append(DomainError(bad, "The deposit is worth at least what it costs", "input.depositWorth"))
    elif draft.deposit_worth >= draft.price:
        found.append(
            DomainError(
                bad,
                "The deposit is worth less than the price (a balance is left to pay)",
                "input.depositWorth",
            )
        )
    limit = purchase_limit()
    if not 1 <= draft.per_member_limit <= limit:
        found.append(DomainError(bad, f"The per-member limit is 1 to {limit} units", "input.perMemberLimit"))
    if draft.deposit_ends_at <= draft.deposit_starts_at:
        found.append(DomainError(bad, "The deposit window ends after it starts", "input.depositEndsAt"))
    elif draft.deposit_ends_at <= now():
        found.append(DomainError(bad, "The deposit window is over already", "input.depositEndsAt"))
    if draft.balance_starts_at < draft.deposit_ends_at:
        found.append(
            DomainError(
                bad, "The balance window opens when the deposit window has closed", "input.balanceStartsAt"
            )
        )
    if draft.balance_ends_at <= draft.balance_starts_at:
        found.append(DomainError(bad, "The balance window ends after it starts", "input.balanceEndsAt"))
    elif draft.balance_ends_at - draft.deposit_starts_at > MAX_RUN:
        found.append(DomainError(bad, "A presale runs at most a year", "input.balanceEndsAt"))
    return found


async def create_presale(draft: PresaleDraft) -> Presale:
    """Set up a presale of one SKU. Raises ValidationErrors with one coded error per bad field."""
    sku = await Sku.get_or_none(id=draft.sku_id).select_related("product")
    problems = _problems(draft, sku)
    if problems:
        raise ValidationErrors(problems)
    assert sku is not None
    return await Presale.create(
        shop_id=sku.product.shop_id,  # type: ignore[attr-defined]
        product_id=sku.product.id,
        sku_id=sku.id,
        title=draft.title.strip(),
        price=draft.price,
        deposit=draft.deposit,
        deposit_worth=draft.deposit_worth,
        per_member_limit=draft.per_member_limit,
        deposit_starts_at=draft.deposit_starts_at,
        deposit_ends_at=draft.deposit_ends_at,
        balance_starts_at=draft.balance_starts_at,
        balance_ends_at=draft.balance_ends_at,
    )


async def stop_presale(presale_id: int) -> Presale:
    """Take no more deposits, at once. Deposits already paid keep their balance window. Twice is a no-op."""
    presale = await Presale.get_or_none(id=presale_id)
    if presale is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No presale has this ID", "id")
    if presale.stopped_at is None:
        await Presale.filter(id=presale_id, stopped_at__isnull=True).update(stopped_at=now())
        presale = await Presale.get(id=presale_id)
    return presale


def takes_deposits(presale: Presale, at: datetime | None = None) -> bool:
    at = at or now()
    return presale.stopped_at is None and presale.deposit_starts_at <= at < presale.deposit_ends_at


def forfeit_notice(presale: Presale) -> str:
    """What the shopper is shown before paying the deposit."""
    return (
        f"定金 {presale.deposit / 100:.2f} 元抵 {presale.deposit_worth / 100:.2f} 元；"
        f"尾款须在 {presale.balance_starts_at:%Y-%m-%d %H:%M} 至 {presale.balance_ends_at:%Y-%m-%d %H:%M} 支付，"
        "逾期未付尾款定金不退"
    )


async def open_presales(product_id: int | None, offset: int, limit: int) -> tuple[list[Presale], int]:
    """Presales taking deposits now (of one product, or all), soonest closing first."""
    at = now()
    query = Presale.filter(stopped_at__isnull=True, deposit_starts_at__lte=at, deposit_ends_at__gt=at)
    if product_id is not None:
        query = query.filter(product_id=product_id)
    rows = await query.order_by("deposit_ends_at", "id").offset(offset).limit(limit)
    return list(rows), await query.count()


async def all_presales(offset: int, limit: int) -> tuple[list[Presale], int]:
    rows = await Presale.all().order_by("-id").offset(offset).limit(limit)
    return list(rows), await Presale.all().count()


async def stats_of(presale_ids: Sequence[int]) -> dict[int, PresaleStats]:
    """Live numbers of many presales in one grouped query."""
    counts: dict[int, dict[str, int]] = {pid: {} for pid in presale_ids}
    rows = (
        await PresaleOrder.filter(presale_id__in=list(presale_ids))
        .annotate(n=Count("id"))
        .group_by("presale_id", "stage")
        .values("presale_id", "stage", "n")
    )
    for row in rows:
        counts.setdefault(int(row["presale_id"]), {})[str(row["stage"])] = int(row["n"])
    return {
        pid: PresaleStats(
            deposits_due=c.get(PresaleStage.DEPOSIT_DUE.value, 0),
            deposits_paid=c.get(PresaleStage.DEPOSIT_PAID.value, 0),
            balances_paid=c.get(PresaleStage.BALANCE_PAID.value, 0),
            forfeited=c.get(PresaleStage.FORFEITED.value, 0),
            cancelled=c.get(PresaleStage.CANCELLED.value, 0),
        )
        for pid, c in counts.items()
    }

"""Coupon templates: staff create, change and stop them; the rules are checked before anything is written."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from infra.clock import now
from models import Brand, Category, Coupon, CouponKind, CouponScope, CouponStatus, Product
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.orders.pricing import MAX_ORDER_TOTAL

NAME_MAX = 64
DESCRIPTION_MAX = 200
MAX_QUANTITY = 10_000_000
MAX_PER_MEMBER = 100
MAX_SCOPE_IDS = 200
MAX_VALID_DAYS = 3650

_SCOPE_MODELS: Mapping[CouponScope, Any] = {
    CouponScope.CATEGORIES: Category,
    CouponScope.PRODUCTS: Product,
    CouponScope.BRANDS: Brand,
}
# What a held coupon's rules are: these cannot change once members hold the coupon (no bait and switch).
RULE_FIELDS = ("kind", "amount_off", "discount_percent", "max_discount", "min_amount", "scope", "scope_ids")


@dataclass(frozen=True)
class CouponDraft:
    """A coupon's settings as staff give them (money in fen; `scope_ids` are category, product or brand ids)."""

    name: str
    kind: CouponKind
    total_quantity: int
    amount_off: int = 0
    discount_percent: int = 100
    max_discount: int = 0
    min_amount: int = 0
    scope: CouponScope = CouponScope.ALL
    scope_ids: tuple[int, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    claim_starts_at: datetime | None = None
    claim_ends_at: datetime | None = None
    public: bool = True
    per_member_limit: int = 1
    stackable: bool = False
    return_on_refund: bool = False
    description: str = ""
    # Where the input's fields are, for error paths (`input.` for both create and update).
    prefix: str = field(default="input.", compare=False)


def _problem(
    draft: CouponDraft, name: str, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT
) -> DomainError:
    return DomainError(code, message, draft.prefix + name)


def _problems(d: CouponDraft) -> list[DomainError]:
    found: list[DomainError] = []
    if not 1 <= len(d.name.strip()) <= NAME_MAX:
        found.append(_problem(d, "name", f"The name is 1 to {NAME_MAX} characters"))
    if len(d.description) > DESCRIPTION_MAX:
        found.append(_problem(d, "description", f"The description is at most {DESCRIPTION_MAX} characters"))
    money = {"amountOff": d.amount_off, "maxDiscount": d.max_discount, "minAmount": d.min_amount}
    for name, value in money.items():
        if not 0 <= value <= MAX_ORDER_TOTAL:
            found.append(_problem(d, name, f"An amount is 0 to {MAX_ORDER_TOTAL} fen"))
    if d.kind in (CouponKind.CASH, CouponKind.THRESHOLD) and d.amount_off <= 0:
        found.append(_problem(d, "amountOff", "A cash or threshold coupon takes a positive amount off"))
    if d.kind == CouponKind.CASH and d.min_amount != 0:
        found.append(_problem(d, "minAmount", "A cash coupon (无门槛) has no minimum; use THRESHOLD"))
    if d.kind == CouponKind.THRESHOLD:
        if d.min_amount <= 0:
            found.append(_problem(d, "minAmount", "A threshold coupon (满减) needs a minimum spend"))
        elif d.amount_off > d.min_amount:
            found.append(_problem(d, "amountOff", "The amount off is at most the minimum spend"))
    if d.kind == CouponKind.DISCOUNT:
        if not 1 <= d.discount_percent <= 99:
            found.append(_problem(d, "discountPercent", "The percent paid is 1 to 99 (85 = 8.5折)"))
        if d.max_discount <= 0:
            found.append(_problem(d, "maxDiscount", "A discount coupon needs a cap (most fen off)"))
    if d.scope == CouponScope.ALL and d.scope_ids:
        found.append(
            _problem(d, "scopeIds", "A coupon for everything lists no categories, products or brands")
        )
    if d.scope != CouponScope.ALL and not d.scope_ids:
        found.append(_problem(d, "scopeIds", f"Name the {d.scope.value.lower()} the coupon is for"))
    if len(d.scope_ids) > MAX_SCOPE_IDS:
        found.append(_problem(d, "scopeIds", f"At most {MAX_SCOPE_IDS} in a coupon's scope"))
    fixed = d.valid_until is not None
    if fixed == (d.valid_days is not None):
        found.append(_problem(d, "validUntil", "Give either a fixed window (validUntil) or validDays"))
    if d.valid_days is not None and not 1 <= d.valid_days <= MAX_VALID_DAYS:
        found.append(_problem(d, "validDays", f"validDays is 1 to {MAX_VALID_DAYS}"))
    if d.valid_from is not None and d.valid_days is not None:
        found.append(_problem(d, "validFrom", "validFrom belongs to a fixed window, not to validDays"))
    if d.valid_from is not None and d.valid_until is not None and d.valid_until <= d.valid_from:
        found.append(_problem(d, "validUntil", "The validity ends after it starts"))
    if d.claim_starts_at and d.claim_ends_at and d.claim_ends_at <= d.claim_starts_at:
        found.append(_problem(d, "claimEndsAt", "Claiming ends after it starts"))
    if not 1 <= d.total_quantity <= MAX_QUANTITY:
        found.append(_problem(d, "totalQuantity", f"The total is 1 to {MAX_QUANTITY}"))
    if not 1 <= d.per_member_limit <= MAX_PER_MEMBER:
        found.append(_problem(d, "perMemberLimit", f"A member may hold 1 to {MAX_PER_MEMBER} of a coupon"))
    return found


async def _check_scope(d: CouponDraft) -> None:
    model = _SCOPE_MODELS.get(d.scope)
    if model is None or not d.scope_ids:
        return
    known = set(await model.filter(id__in=list(d.scope_ids)).values_list("id", flat=True))
    missing = [i for i in d.scope_ids if i not in known]
    if missing:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"No {d.scope.value.lower()[:-1]} has ID {missing[0]}", d.prefix + "scopeIds"
        )


async def _check(d: CouponDraft) -> None:
    problems = _problems(d)
    if problems:
        raise ValidationErrors(problems)
    await _check_scope(d)


def _columns(d: CouponDraft) -> dict[str, Any]:
    values = {f.name: getattr(d, f.name) for f in dataclasses.fields(d) if f.name != "prefix"}
    values["name"] = d.name.strip()
    values["scope_ids"] = sorted(set(d.scope_ids))
    if d.kind != CouponKind.DISCOUNT:
        values["discount_percent"], values["max_discount"] = 100, 0
    else:
        values["amount_off"] = 0
    return values


async def create_coupon(draft: CouponDraft) -> Coupon:
    """A new ACTIVE coupon. BAD_USER_INPUT (every problem at once, with its field) or NOT_FOUND for a scope ID."""
    await _check(draft)
    return await Coupon.create(**_columns(draft))


def draft_of(coupon: Coupon) -> CouponDraft:
    """The coupon's current settings as a draft, to apply an update to."""
    names = [f.name for f in dataclasses.fields(CouponDraft) if f.name not in ("prefix", "scope_ids")]
    return CouponDraft(**{n: getattr(coupon, n) for n in names}, scope_ids=tuple(coupon.scope_ids))


async def get_coupon(coupon_id: int, field_name: str = "id") -> Coupon:
    coupon = await Coupon.get_or_none(id=coupon_id)
    if coupon is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No coupon has this ID", field_name)
    return coupon


async def update_coupon(coupon_id: int, changes: Mapping[str, Any]) -> Coupon:
    """Change the given settings (draft field names). Once members hold the coupon its rules (kind, amounts,
    scope) stay as they were (CONFLICT), and the total cannot drop below what was handed out."""
    check_texts(changes)
    coupon = await get_coupon(coupon_id)
    draft = dataclasses.replace(draft_of(coupon), **changes)
    if coupon.issued > 0:
        changed = [n for n in RULE_FIELDS if n in changes and _norm(changes[n]) != _norm(getattr(coupon, n))]
        if changed:
            raise DomainError(
                ErrorCode.CONFLICT,
                "Members already hold this coupon: its rules cannot change; stop it and make a new one",
                "input." + _camel(changed[0]),
            )
    if draft.total_quantity < coupon.issued:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"{coupon.issued} were already handed out; the total cannot be less",
            "input.totalQuantity",
        )
    await _check(draft)
    values = _columns(draft)
    # A queryset update leaves auto_now alone: the stamp tells every process its kept copy is old (checkout).
    values["updated_at"] = now()
    # Guarded: a claim between our read and this write must not leave the total below what was handed out.
    updated = await Coupon.filter(id=coupon_id, issued__lte=draft.total_quantity).update(**values)
    if not updated:
        raise DomainError(
            ErrorCode.CONFLICT, "More were handed out meanwhile; try again", "input.totalQuantity"
        )
    return await Coupon.get(id=coupon_id)


def check_texts(changes: Mapping[str, Any]) -> None:
    """Text lengths, before anything is looked up."""
    if "name" in changes and not 1 <= len(changes["name"].strip()) <= NAME_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"The name is 1 to {NAME_MAX} characters", "input.name")
    if len(changes.get("description", "")) > DESCRIPTION_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"The description is at most {DESCRIPTION_MAX} characters",
            "input.description",
        )


def _norm(value: Any) -> Any:
    return sorted(set(value)) if isinstance(value, list | tuple) else value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def stop_coupon(coupon_id: int) -> Coupon:
    """No more claims, issues or redeemed codes; coupons members already hold stay usable."""
    coupon = await get_coupon(coupon_id)
    await Coupon.filter(id=coupon_id).update(status=CouponStatus.STOPPED)
    coupon.status = CouponStatus.STOPPED
    return coupon


def claimable_filter(at: datetime) -> Q:
    """Public, active coupons whose claim window is open at `at` and that are not all handed out."""
    return (
        Q(status=CouponStatus.ACTIVE, public=True)
        & (Q(claim_starts_at__isnull=True) | Q(claim_starts_at__lte=at))
        & (Q(claim_ends_at__isnull=True) | Q(claim_ends_at__gt=at))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
    )


async def staff_coupons(status: CouponStatus | None, offset: int, limit: int) -> tuple[list[Coupon], bool]:
    """One page of coupons for staff, newest first, and whether more follow."""
    query = Coupon.all() if status is None else Coupon.filter(status=status)
    rows = list(await query.order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_staff_coupons(status: CouponStatus | None) -> int:
    return await (Coupon.all() if status is None else Coupon.filter(status=status)).count()


def claim_window_open(coupon: Coupon, at: datetime | None = None) -> bool:
    at = at or now()
    return (coupon.claim_starts_at is None or coupon.claim_starts_at <= at) and (
        coupon.claim_ends_at is None or coupon.claim_ends_at > at
    )

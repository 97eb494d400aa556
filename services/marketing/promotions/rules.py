"""A promotion's building blocks: small registered condition and action classes with typed arguments.

A new kind of rule is one class here (registered with `@condition` / `@action`) plus a test. Arguments are the
class's dataclass fields: `int`, `bool`, `str` and `tuple[int, ...]` (ids), parsed and checked by `parse_rule`;
`refs` names the node type of id arguments, so the API can take and show global IDs.

Conditions come in three sorts:
- SCOPE conditions pick the lines a promotion works on (products, categories, brands);
- VIEWER conditions are about who buys and when (member levels, first order, time of day, weekday, day of
  month); the product page evaluates them too, except the member-specific ones (first order), which only
  checkout knows;
- BASKET conditions are about the lines in scope (minimum amount, minimum quantity).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

MAX_IDS = 500
MAX_FEN = 200_000_00  # ¥200,000: the highest unit price the catalog allows


class RuleSort(StrEnum):
    SCOPE = "SCOPE"
    VIEWER = "VIEWER"
    BASKET = "BASKET"


@dataclass(frozen=True)
class Item:
    """What scope conditions see of a line or a product."""

    product_id: int
    category_ids: frozenset[int]  # the product's category and its ancestors
    brand_id: int | None


@dataclass(frozen=True)
class Facts:
    """What viewer and basket conditions see."""

    now: datetime
    level_id: int | None
    is_member: bool
    first_order: bool | None  # None: unknown here (the product page); such conditions do not hold then
    amount: int = 0  # fen the lines in scope cost after the earlier stages
    quantity: int = 0


class RuleError(Exception):
    """A bad rule: `field` is relative to the rule (e.g. "args.percent")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Rule:
    type: ClassVar[str]
    refs: ClassVar[Mapping[str, str]] = {}

    def check(self) -> None:
        """Raise RuleError for arguments of the right type but out of bounds."""

    def to_json(self) -> dict[str, Any]:
        args = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"type": self.type, "args": args}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Condition(Rule):
    sort: ClassVar[RuleSort]
    member_specific: ClassVar[bool] = False

    def matches(self, item: Item) -> bool:
        """SCOPE conditions: whether the line or product is in scope."""
        return True

    def holds(self, facts: Facts) -> bool:
        """VIEWER and BASKET conditions: whether the promotion applies."""
        return True

    def boundaries(self, after: datetime) -> datetime | None:
        """The next moment after `after` at which `holds` may change by time alone (None: never)."""
        return None


class Action(Rule):
    """Per-unit actions (UNIT_ACTIONS) give a price, usable by limited-time promotions; all of them work on an
    order promotion's lines in scope (money off, free shipping, a gift)."""

    def unit_discount(self, unit_price: int) -> int:
        """Per-unit actions: fen off one unit costing `unit_price`."""
        return 0

    def order_discount(self, amount: int, quantity_by_unit: list[tuple[int, int]]) -> int:
        """Order actions: fen off lines in scope costing `amount` in all ((unit price, quantity) each)."""
        return 0


CONDITIONS: dict[str, type[Condition]] = {}
ACTIONS: dict[str, type[Action]] = {}

C = typing.TypeVar("C", bound=type[Condition])
A = typing.TypeVar("A", bound=type[Action])


def condition(cls: C) -> C:
    CONDITIONS[cls.type] = cls
    return cls


def action(cls: A) -> A:
    ACTIONS[cls.type] = cls
    return cls


def parse_rule(registry: Mapping[str, type[Rule]], raw: Mapping[str, Any]) -> Rule:
    """A rule from {"type", "args"}: RuleError for an unknown type or arguments of the wrong type or range."""
    kind = raw.get("type")
    cls = registry.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RuleError("type", f"Unknown rule type; one of {', '.join(sorted(registry))}")
    args = raw.get("args") or {}
    if not isinstance(args, Mapping):
        raise RuleError("args", "The arguments are an object")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in args:
        if name not in names:
            raise RuleError(f"args.{name}", f"{cls.type} takes no argument {name}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in args:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RuleError(f"args.{f.name}", f"{cls.type} needs {f.name}")
            continue
        values[f.name] = _typed(hints[f.name], args[f.name], f"args.{f.name}")
    rule = cls(**values)
    rule.check()
    return rule


@functools.cache
def _hints(cls: type[Rule]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _typed(hint: Any, value: Any, field: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise RuleError(field, "Expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleError(field, "Expected a whole number")
        return value
    if hint is str:
        if not isinstance(value, str) or len(value) > 60:
            raise RuleError(field, "Expected text of at most 60 characters")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise RuleError(field, "Expected a list of IDs or numbers")
        if len(value) > MAX_IDS:
            raise RuleError(field, f"At most {MAX_IDS} entries")
        return tuple(dict.fromkeys(value))
    raise TypeError(hint)  # a rule class with an unsupported argument type


def _at_least(value: int, low: int, field: str, what: str) -> None:
    if value < low:
        raise RuleError(field, f"{what} is at least {low}")


def _not_empty(ids: tuple[int, ...], field: str) -> None:
    if not ids:
        raise RuleError(field, "The scope is empty: name at least one")


# --- Conditions ------------------------------------------------------------------------------------------------


@condition
@dataclass(frozen=True)
class MinAmount(Condition):
    """满: the lines in scope cost at least `amount` fen (after limited-time prices)."""

    type = "MIN_AMOUNT"
    sort = RuleSort.BASKET
    amount: int

    def check(self) -> None:
        _at_least(self.amount, 1, "args.amount", "The amount")
        if self.amount > MAX_FEN * 100:
            raise RuleError("args.amount", "The amount is beyond any order")

    def holds(self, facts: Facts) -> bool:
        return facts.amount >= self.amount


@condition
@dataclass(frozen=True)
class MinQuantity(Condition):
    """满 N 件: at least `quantity` units in scope."""

    type = "MIN_QUANTITY"
    sort = RuleSort.BASKET
    quantity: int

    def check(self) -> None:
        _at_least(self.quantity, 1, "args.quantity", "The quantity")

    def holds(self, facts: Facts) -> bool:
        return facts.quantity >= self.quantity


@condition
@dataclass(frozen=True)
class Products(Condition):
    type = "PRODUCTS"
    sort = RuleSort.SCOPE
    refs: ClassVar[Mapping[str, str]] = {"ids": "Product"}
    ids: tuple[int, ...]

    def check(self) -> None:
        _not_empty(self.ids, "args.ids")

    def matches(self, item: Item) -> bool:
        return item.product_id in self.ids


@condition
@dataclass(frozen=True)
class Categories(Condition):
    """Products of these categories or of categories below them."""

    type = "CATEGORIES"
    sort = RuleSort.SCOPE
    refs: ClassVar[Mapping[str, str]] = {"ids": "Category"}
    ids: tuple[int, ...]

    def check(self) -> None:
        _not_empty(self.ids, "args.ids")

    def matches(self, item: Item) -> bool:
        return not item.category_ids.isdisjoint(self.ids)


@condition
@dataclass(frozen=True)
class Brands(Condition):
    type = "BRANDS"
    sort = RuleSort.SCOPE
    refs: ClassVar[Mapping[str, str]] = {"ids": "Brand"}
    ids: tuple[int, ...]

    def check(self) -> None:
        _not_empty(self.ids, "args.ids")

    def matches(self, item: Item) -> bool:
        return item.brand_id in self.ids


@condition
@dataclass(frozen=True)
class MemberLevels(Condition):
    """Members of these levels only (the product page shows it to them: answers are cached per level)."""

    type = "MEMBER_LEVELS"
    sort = RuleSort.VIEWER
    refs: ClassVar[Mapping[str, str]] = {"ids": "MemberLevel"}
    ids: tuple[int, ...]

    def check(self) -> None:
        _not_empty(self.ids, "args.ids")

    def holds(self, facts: Facts) -> bool:
        return facts.level_id in self.ids


@condition
@dataclass(frozen=True)
class FirstOrder(Condition):
    """The member has no order yet (cancelled ones aside): member-specific, so checkout only."""

    type = "FIRST_ORDER"
    sort = RuleSort.VIEWER
    member_specific = True

    def holds(self, facts: Facts) -> bool:
        return bool(facts.is_member and facts.first_order)


_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minute(text: str, field: str) -> int:
    match = _CLOCK.match(text)
    if match is None:
        raise RuleError(field, "Expected a time of day as HH:MM, e.g. 20:00")
    return int(match.group(1)) * 60 + int(match.group(2))


@condition
@dataclass(frozen=True)
class TimeWindow(Condition):
    """Every day from `start` to `end` (shop time, HH:MM; an `end` before `start` runs past midnight)."""

    type = "TIME_WINDOW"
    sort = RuleSort.VIEWER
    start: str
    end: str

    def check(self) -> None:
        if _minute(self.start, "args.start") == _minute(self.end, "args.end"):
            raise RuleError("args.end", "The window ends when it starts")

    def holds(self, facts: Facts) -> bool:
        minute = facts.now.hour * 60 + facts.now.minute
        start, end = _minute(self.start, "args.start"), _minute(self.end, "args.end")
        return start <= minute < end if start < end else minute >= start or minute < end

    def boundaries(self, after: datetime) -> datetime | None:
        day = after.replace(second=0, microsecond=0)
        candidates = []
        for text in (self.start, self.end):
            minute = _minute(text, "args")
            at = day.replace(hour=minute // 60, minute=minute % 60)
            candidates.append(at if at > after else at + _DAY)
        return min(candidates)


@condition
@dataclass(frozen=True)
class Weekdays(Condition):
    """On these days of the week (1 = Monday ... 7 = Sunday), shop time."""

    type = "WEEKDAYS"
    sort = RuleSort.VIEWER
    days: tuple[int, ...]

    def check(self) -> None:
        if not self.days or any(not 1 <= d <= 7 for d in self.days):
            raise RuleError("args.days", "Days of the week are 1 (Monday) to 7 (Sunday)")

    def holds(self, facts: Facts) -> bool:
        return facts.now.isoweekday() in self.days

    def boundaries(self, after: datetime) -> datetime | None:
        return _next_midnight(after)


@condition
@dataclass(frozen=True)
class MonthDays(Condition):
    """会员日: on these days of the month (1 to 31), shop time."""

    type = "MONTH_DAYS"
    sort = RuleSort.VIEWER
    days: tuple[int, ...]

    def check(self) -> None:
        if not self.days or any(not 1 <= d <= 31 for d in self.days):
            raise RuleError("args.days", "Days of the month are 1 to 31")

    def holds(self, facts: Facts) -> bool:
        return facts.now.day in self.days

    def boundaries(self, after: datetime) -> datetime | None:
        return _next_midnight(after)


_DAY = timedelta(days=1)


def _next_midnight(after: datetime) -> datetime:
    return after.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY


# --- Actions ---------------------------------------------------------------------------------------------------


@action
@dataclass(frozen=True)
class AmountOff(Action):
    """减: `amount` fen off the lines in scope (an order promotion), or off each unit (limited-time)."""

    type = "AMOUNT_OFF"
    amount: int

    def check(self) -> None:
        _at_least(self.amount, 1, "args.amount", "The amount")
        if self.amount > MAX_FEN * 100:
            raise RuleError("args.amount", "The amount is beyond any order")

    def unit_discount(self, unit_price: int) -> int:
        return min(self.amount, unit_price)

    def order_discount(self, amount: int, quantity_by_unit: list[tuple[int, int]]) -> int:
        return min(self.amount, amount)


@action
@dataclass(frozen=True)
class PercentOff(Action):
    """折: `percent` off (10 = 9折), at most `cap` fen (0: no cap), on the lines in scope or per unit."""

    type = "PERCENT_OFF"
    percent: int
    cap: int = 0

    def check(self) -> None:
        if not 1 <= self.percent <= 100:
            raise RuleError("args.percent", "The percentage off is 1 to 100")
        if self.cap < 0:
            raise RuleError("args.cap", "The cap is 0 (none) or more fen")

    def _capped(self, fen: int) -> int:
        return min(fen, self.cap) if self.cap else fen

    def unit_discount(self, unit_price: int) -> int:
        # The unit price after the discount rounds half up to whole fen, as level prices do.
        paid = (unit_price * (100 - self.percent) + 50) // 100
        return self._capped(unit_price - paid)

    def order_discount(self, amount: int, quantity_by_unit: list[tuple[int, int]]) -> int:
        return self._capped(amount * self.percent // 100)


@action
@dataclass(frozen=True)
class FixedPrice(Action):
    """一口价: each unit in scope costs `price` fen (never more than it did)."""

    type = "FIXED_PRICE"
    price: int

    def check(self) -> None:
        _at_least(self.price, 0, "args.price", "The price")
        if self.price > MAX_FEN:
            raise RuleError("args.price", "The price is beyond the catalog's highest")

    def unit_discount(self, unit_price: int) -> int:
        return max(0, unit_price - self.price)

    def order_discount(self, amount: int, quantity_by_unit: list[tuple[int, int]]) -> int:
        return sum(self.unit_discount(unit) * quantity for unit, quantity in quantity_by_unit)


@action
@dataclass(frozen=True)
class FreeShipping(Action):
    """包邮: the order ships free."""

    type = "FREE_SHIPPING"


@action
@dataclass(frozen=True)
class GiftSku(Action):
    """赠品: `quantity` of a SKU comes with the order, while its stock lasts."""

    type = "GIFT_SKU"
    refs: ClassVar[Mapping[str, str]] = {"sku_id": "Sku"}
    sku_id: int
    quantity: int = 1

    def check(self) -> None:
        if not 1 <= self.quantity <= 10:
            raise RuleError("args.quantity", "A gift is 1 to 10 units")


# Actions that give a per-unit price; limited-time promotions take only these.
UNIT_ACTIONS = frozenset({AmountOff.type, PercentOff.type, FixedPrice.type})

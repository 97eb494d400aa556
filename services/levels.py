"""Member levels by growth value, and the price context a level gives."""

from __future__ import annotations

import time

from models import MemberLevel
from services.pricing import PriceContext

# The level table is read on every member request and changes rarely: keep it in-process briefly.
_CACHE_SECONDS = 5.0
_cache: tuple[float, list[MemberLevel]] | None = None


def invalidate_levels() -> None:
    global _cache
    _cache = None


async def _levels() -> list[MemberLevel]:
    global _cache
    if _cache is None or _cache[0] < time.monotonic():
        rows = await MemberLevel.all().order_by("-min_growth")
        _cache = (time.monotonic() + _CACHE_SECONDS, list(rows))
    return _cache[1]


async def level_for_growth(growth: int) -> MemberLevel | None:
    """The highest level whose threshold `growth` reaches, or None when no level is configured."""
    for level in await _levels():
        if growth >= level.min_growth:
            return level
    return None


def price_context(level: MemberLevel | None) -> PriceContext:
    """How a member of `level` is priced; members of one level share cached answers."""
    if level is None:
        return PriceContext(scope="member", is_member=True)
    return PriceContext(scope=f"level:{level.id}", is_member=True, level_percent=level.discount_percent)

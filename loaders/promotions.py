"""Loaders for promotions on product pages: the promotions running now (once per request, from the process's copy
or one query, with the next moment one starts or ends) and each category's ancestry (what a category scope
matches)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiodataloader import DataLoader

from infra.clock import now
from services.marketing.promotions.engine import Compiled, category_ids, next_boundary, running_promotions


@dataclass(frozen=True)
class Running:
    at: datetime
    promotions: tuple[Compiled, ...]
    # When what runs may change by time alone (a start, an end, a daily window, a weekday turning).
    until: datetime | None


class RunningPromotionsLoader(DataLoader[str, Running]):
    """One key ("now"): the promotions running at the request's moment, read once per request."""

    async def batch_load_fn(self, keys: list[str]) -> list[Running]:
        at = now()
        promotions, upcoming = await running_promotions(at)
        running = Running(at, tuple(promotions), next_boundary(promotions, at, upcoming))
        return [running for _ in keys]


class CategoryAncestryLoader(DataLoader[int, frozenset[int]]):
    """A category id with its ancestors' ids."""

    async def batch_load_fn(self, keys: list[int]) -> list[frozenset[int]]:
        found = await category_ids(keys)
        return [found.get(key, frozenset({key})) for key in keys]

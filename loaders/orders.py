"""Loaders for orders: each order's lines and timeline, in one query per page of orders."""

from __future__ import annotations

from collections import defaultdict

from aiodataloader import DataLoader

from models import OrderEvent, OrderLine


class LinesByOrderLoader(DataLoader[int, list[OrderLine]]):
    async def batch_load_fn(self, order_ids: list[int]) -> list[list[OrderLine]]:
        groups: dict[int, list[OrderLine]] = defaultdict(list)
        for line in await OrderLine.filter(order_id__in=order_ids).order_by("order_id", "id"):
            groups[line.order_id].append(line)  # type: ignore[attr-defined]
        return [groups.get(i, []) for i in order_ids]


class EventsByOrderLoader(DataLoader[int, list[OrderEvent]]):
    async def batch_load_fn(self, order_ids: list[int]) -> list[list[OrderEvent]]:
        groups: dict[int, list[OrderEvent]] = defaultdict(list)
        for event in await OrderEvent.filter(order_id__in=order_ids).order_by("order_id", "id"):
            groups[event.order_id].append(event)  # type: ignore[attr-defined]
        return [groups.get(i, []) for i in order_ids]

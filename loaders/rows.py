"""Rows of any model by primary key: the loader behind `node(id:)` for types without a loader of their own.

One loader per model per request (`Context.rows(Model)`), so many IDs of one type cost one query. Like every
loader here it does not check who is asking: the node resolvers that use it decide what the viewer may see.
"""

from __future__ import annotations

from typing import Any

from aiodataloader import DataLoader
from tortoise.models import Model


class RowLoader(DataLoader[int, Any]):
    def __init__(self, model: type[Model]) -> None:
        super().__init__()
        self.model = model

    async def batch_load_fn(self, ids: list[int]) -> list[Any]:
        found = {row.pk: row for row in await self.model.filter(id__in=ids)}
        return [found.get(i) for i in ids]

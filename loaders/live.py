"""Loaders for live rooms: a room's products. They do not check who is asking."""

from __future__ import annotations

from collections import defaultdict

from aiodataloader import DataLoader

from models import LiveRoomProduct


class RoomProductsByRoom(DataLoader[int, list[LiveRoomProduct]]):
    async def batch_load_fn(self, room_ids: list[int]) -> list[list[LiveRoomProduct]]:
        grouped: dict[int, list[LiveRoomProduct]] = defaultdict(list)
        for row in await LiveRoomProduct.filter(room_id__in=room_ids).order_by("position", "id"):
            grouped[row.room_id].append(row)  # type: ignore[attr-defined]
        return [grouped.get(room_id, []) for room_id in room_ids]

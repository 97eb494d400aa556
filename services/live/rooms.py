"""Live rooms: scheduling, going live, pausing, ending, and what shoppers see of them."""

from __future__ import annotations

from models import LiveRoom


async def room_exists(room_id: int) -> bool:
    return await LiveRoom.exists(id=room_id)

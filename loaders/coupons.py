"""Loaders for coupons: how many of each coupon a member has got (the coupon center's "claimed" badge)."""

from __future__ import annotations

from collections import defaultdict

from aiodataloader import DataLoader

from models import MemberCoupon


class ClaimedCountLoader(DataLoader[tuple[int, int], int]):
    """Keys are (member id, coupon id); one query per member per batch."""

    async def batch_load_fn(self, keys: list[tuple[int, int]]) -> list[int]:
        wanted: dict[int, set[int]] = defaultdict(set)
        for member_id, coupon_id in keys:
            wanted[member_id].add(coupon_id)
        counts: dict[tuple[int, int], int] = defaultdict(int)
        for member_id, coupon_ids in wanted.items():
            for coupon_id in await MemberCoupon.filter(
                member_id=member_id, coupon_id__in=sorted(coupon_ids)
            ).values_list("coupon_id", flat=True):
                counts[(member_id, int(coupon_id))] += 1
        return [counts[key] for key in keys]

"""One loader per "load X by Y" for member-owned objects; a fresh set is made for every request.

Loaders here do not check who is asking: the resolvers that use them scope every key to the viewing member.
"""

from __future__ import annotations

from collections import defaultdict

from aiodataloader import DataLoader

from models import Address
from services.members.addresses import ADDRESS_ORDER


class AddressLoader(DataLoader[int, Address | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Address | None]:
        found = {a.id: a for a in await Address.filter(id__in=ids)}
        return [found.get(i) for i in ids]


class AddressesByMemberLoader(DataLoader[int, list[Address]]):
    """Each member's addresses, the default first, then the newest (at most 20, so no paging)."""

    async def batch_load_fn(self, member_ids: list[int]) -> list[list[Address]]:
        groups: dict[int, list[Address]] = defaultdict(list)
        for address in await Address.filter(member_id__in=member_ids).order_by(*ADDRESS_ORDER):
            groups[address.member_id].append(address)
        return [groups.get(member_id, []) for member_id in member_ids]


class MemberLoaders:
    """The member-owned loaders of one request."""

    def __init__(self) -> None:
        self.address = AddressLoader()
        self.addresses_by_member = AddressesByMemberLoader()

"""The signed-in member's addresses: `myAddresses` and the address mutations. Thin: find the member, decode
IDs, call services.members.addresses, wrap the result. In mutations every DomainError becomes the payload's `errors`;
in `myAddresses` it becomes a GraphQL error with its code."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from loaders.members import MemberLoaders
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.addresses import (
    Address,
    AddressCreatePayload,
    AddressDeletePayload,
    AddressInput,
    AddressSetDefaultPayload,
    AddressUpdateInput,
    AddressUpdatePayload,
)
from schema.context import Context
from schema.node import decode_id, encode_id
from services.errors import DomainError, ErrorCode
from services.members import addresses

AddressInfo = Info[Context, None]


def _member_id(info: AddressInfo) -> int:
    """The viewing member; UNAUTHENTICATED for a guest, FORBIDDEN for staff and partners (they have none)."""
    viewer = info.context.viewer
    if viewer.member is not None:
        return viewer.member.id
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to manage addresses")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members have addresses")


def _address_pk(id: strawberry.ID) -> int:
    return decode_id(id, "Address", "id")


def _wrote(info: AddressInfo) -> None:
    # Loaders keep rows for the whole request: fields resolved after a write must read the rows as written.
    info.context.member_loaders = MemberLoaders()


async def my_addresses(info: AddressInfo) -> list[Address]:
    member_id = _member_id(info)
    rows = await info.context.member_loaders.addresses_by_member.load(member_id)
    return [Address.from_model(a) for a in rows]


@node_type("Address")
async def address_node(context: Context, pk: int) -> Address | None:
    """Only the owner's: another member's address is answered exactly like a missing one."""
    member = context.viewer.member
    if member is None:
        return None
    address = await context.member_loaders.address.load(pk)
    return Address.from_model(address) if address and address.member_id == member.id else None


@payload_mutation
async def address_create(info: AddressInfo, input: AddressInput) -> AddressCreatePayload:
    draft = addresses.AddressDraft(
        name=input.name,
        phone=input.phone,
        province=input.province,
        city=input.city,
        district=input.district,
        detail=input.detail,
        is_default=input.is_default,
    )
    address = await addresses.create_address(_member_id(info), draft)
    _wrote(info)
    return AddressCreatePayload(address=Address.from_model(address))


@payload_mutation
async def address_update(
    info: AddressInfo, id: strawberry.ID, input: AddressUpdateInput
) -> AddressUpdatePayload:
    changes = addresses.AddressChanges(
        name=input.name,
        phone=input.phone,
        province=input.province,
        city=input.city,
        district=input.district,
        detail=input.detail,
        is_default=input.is_default,
    )
    address = await addresses.update_address(_member_id(info), _address_pk(id), changes)
    _wrote(info)
    return AddressUpdatePayload(address=Address.from_model(address))


@payload_mutation
async def address_delete(info: AddressInfo, id: strawberry.ID) -> AddressDeletePayload:
    pk = _address_pk(id)
    await addresses.delete_address(_member_id(info), pk)
    _wrote(info)
    return AddressDeletePayload(deleted_id=encode_id("Address", pk))


@payload_mutation
async def address_set_default(info: AddressInfo, id: strawberry.ID) -> AddressSetDefaultPayload:
    address = await addresses.set_default_address(_member_id(info), _address_pk(id))
    _wrote(info)
    return AddressSetDefaultPayload(address=Address.from_model(address))


@strawberry.type
class AddressQuery:
    my_addresses: list[Address] = strawberry.field(
        resolver=my_addresses, description="The signed-in member's addresses, the default first, then newest."
    )


@strawberry.type
class AddressMutation:
    address_create: AddressCreatePayload = strawberry.mutation(
        resolver=address_create, description="Add an address (at most 20); the first one is the default."
    )
    address_update: AddressUpdatePayload = strawberry.mutation(resolver=address_update)
    address_delete: AddressDeletePayload = strawberry.mutation(
        resolver=address_delete,
        description="Deleting the default makes the newest remaining one the default.",
    )
    address_set_default: AddressSetDefaultPayload = strawberry.mutation(
        resolver=address_set_default, description="Make this the default address, and no other."
    )

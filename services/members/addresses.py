"""Members' delivery addresses: at most 20 each, checked on every write, and exactly one of them the default.

Every function takes the member's id and looks addresses up only among that member's own, so another member's
address behaves exactly like one that does not exist: NOT_FOUND, nothing changed.

The default is kept by the writes themselves: a member's first address becomes the default, making one the
default clears the others in the same transaction, and deleting the default promotes the newest remaining one.
All address writes of one member take a lock on the member's row first (PostgreSQL; SQLite runs one write
transaction at a time anyway), so concurrent creates can neither pass the limit together nor both end up the
default.

Field paths in errors name the GraphQL argument: `input.phone`, `id`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from tortoise.transactions import in_transaction

from models import Address, Member
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.members.regions import RegionProblem, check_region

MAX_ADDRESSES = 20
# Column sizes of the model, checked here so PostgreSQL never has to reject (or SQLite silently keep) them.
NAME_MAX = 32
PHONE_MAX = 20
PHONE_INPUT_MAX = 32  # as typed: spaced, or with +86, before it is stored bare
REGION_MAX = 32
DETAIL_MAX = 200
# How a member's addresses are listed: the default first, then the newest.
ADDRESS_ORDER = ("-is_default", "-created_at", "-id")

MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}-\d{7,8}(-\d{1,6})?")


@dataclass(frozen=True)
class AddressDraft:
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str
    is_default: bool = False


@dataclass(frozen=True)
class AddressChanges:
    """An edit of an address; None leaves a field as it is (no field of an address can be cleared)."""

    name: str | None = None
    phone: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    detail: str | None = None
    is_default: bool | None = None


@dataclass(frozen=True)
class _Checked:
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str


def _not_found() -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, "No address has this ID", "id")


def _text(problems: list[DomainError], field: str, value: str, label: str, max_length: int) -> str:
    text = value.strip()
    if not text:
        problems.append(DomainError(ErrorCode.BAD_USER_INPUT, f"{label} is required", field))
    elif len(text) > max_length:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"{label} may be at most {max_length} characters", field)
        )
    return text


def _phone(problems: list[DomainError], value: str) -> str:
    # Pasted numbers often come spaced (138 0013 8000) or with the country code; store them bare.
    phone = "".join(value.split()).removeprefix("+86")
    if not phone:
        problems.append(DomainError(ErrorCode.BAD_USER_INPUT, "The phone number is required", "input.phone"))
    elif len(phone) > PHONE_MAX or not (MOBILE.fullmatch(phone) or LANDLINE.fullmatch(phone)):
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT,
                "The phone number must be a mainland mobile number (13800138000) or a landline with its "
                "area code (0755-12345678)",
                "input.phone",
            )
        )
    return phone


def _check(name: str, phone: str, province: str, city: str, district: str, detail: str) -> _Checked:
    """The address's fields trimmed and with the region in full names, or every problem with them at once."""
    problems: list[DomainError] = []
    checked = _Checked(
        name=_text(problems, "input.name", name, "The recipient's name", NAME_MAX),
        phone=_phone(problems, phone),
        province=_text(problems, "input.province", province, "The province", REGION_MAX),
        city=_text(problems, "input.city", city, "The city", REGION_MAX),
        district=_text(problems, "input.district", district, "The district", REGION_MAX),
        detail=_text(problems, "input.detail", detail, "The street address", DETAIL_MAX),
    )
    region_fields = {"input.province", "input.city", "input.district"}
    if not any(p.field in region_fields for p in problems):
        region = check_region(checked.province, checked.city, checked.district)
        if isinstance(region, RegionProblem):
            problems.append(DomainError(ErrorCode.BAD_USER_INPUT, region.message, f"input.{region.part}"))
        else:
            checked = replace(checked, province=region.province, city=region.city, district=region.district)
    if problems:
        raise ValidationErrors(problems)
    return checked


def _check_given(changes: AddressChanges) -> None:
    """Over-long fields of an update, refused before any lookup; everything else is checked on the merged
    address, all problems at once."""
    limits = (
        ("input.name", changes.name, "The recipient's name", NAME_MAX),
        ("input.phone", changes.phone, "The phone number", PHONE_INPUT_MAX),
        ("input.province", changes.province, "The province", REGION_MAX),
        ("input.city", changes.city, "The city", REGION_MAX),
        ("input.district", changes.district, "The district", REGION_MAX),
        ("input.detail", changes.detail, "The street address", DETAIL_MAX),
    )
    problems = [
        DomainError(ErrorCode.BAD_USER_INPUT, f"{label} may be at most {max_length} characters", field)
        for field, value, label, max_length in limits
        if value is not None and len(value.strip()) > max_length
    ]
    if problems:
        raise ValidationErrors(problems)


@asynccontextmanager
async def _member_writes(member_id: int) -> AsyncIterator[None]:
    """One transaction holding the member's row lock, so one member's address writes run one at a time."""
    async with in_transaction():
        member = await Member.filter(id=member_id).select_for_update().first()
        if member is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "The member no longer exists")
        yield


async def _owned(member_id: int, address_id: int) -> Address:
    address = await Address.get_or_none(id=address_id, member_id=member_id)
    if address is None:
        raise _not_found()
    return address


async def _clear_default(member_id: int) -> None:
    await Address.filter(member_id=member_id, is_default=True).update(is_default=False)


async def list_addresses(member_id: int) -> list[Address]:
    """The member's addresses, the default first, then the newest."""
    return await Address.filter(member_id=member_id).order_by(*ADDRESS_ORDER)


async def create_address(member_id: int, draft: AddressDraft) -> Address:
    """Save a new address for the member; their first one is the default whatever `is_default` says.

    Raises ValidationErrors for bad input and LIMIT_EXCEEDED when the member already has MAX_ADDRESSES.
    """
    checked = _check(draft.name, draft.phone, draft.province, draft.city, draft.district, draft.detail)
    async with _member_writes(member_id):
        count = await Address.filter(member_id=member_id).count()
        if count >= MAX_ADDRESSES:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"You can keep at most {MAX_ADDRESSES} addresses; delete one to add another",
            )
        is_default = draft.is_default or count == 0
        if is_default and count:
            await _clear_default(member_id)
        return await Address.create(
            member_id=member_id,
            name=checked.name,
            phone=checked.phone,
            province=checked.province,
            city=checked.city,
            district=checked.district,
            detail=checked.detail,
            is_default=is_default,
        )


async def update_address(member_id: int, address_id: int, changes: AddressChanges) -> Address:
    """Edit one of the member's addresses; the result is checked as a whole (e.g. a new city against the
    address's province).

    `is_default=True` makes it the default; `False` on the default is refused, since a member always has one
    default: they choose another address instead. Raises NOT_FOUND for an address that is not theirs.
    """
    _check_given(changes)
    async with _member_writes(member_id):
        address = await _owned(member_id, address_id)
        checked = _check(
            address.name if changes.name is None else changes.name,
            address.phone if changes.phone is None else changes.phone,
            address.province if changes.province is None else changes.province,
            address.city if changes.city is None else changes.city,
            address.district if changes.district is None else changes.district,
            address.detail if changes.detail is None else changes.detail,
        )
        if changes.is_default is False and address.is_default:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT,
                "There is always one default address: make another address the default instead",
                "input.isDefault",
            )
        if changes.is_default and not address.is_default:
            await _clear_default(member_id)
            address.is_default = True
        address.name = checked.name
        address.phone = checked.phone
        address.province = checked.province
        address.city = checked.city
        address.district = checked.district
        address.detail = checked.detail
        await address.save()
        return address


async def delete_address(member_id: int, address_id: int) -> None:
    """Delete one of the member's addresses; if it was the default, their newest remaining one takes over.

    Raises NOT_FOUND for an address that is not theirs.
    """
    async with _member_writes(member_id):
        address = await _owned(member_id, address_id)
        await address.delete()
        if address.is_default:
            newest = await Address.filter(member_id=member_id).order_by("-created_at", "-id").first()
            if newest is not None:
                await Address.filter(id=newest.id).update(is_default=True)


async def set_default_address(member_id: int, address_id: int) -> Address:
    """Make one of the member's addresses their default, and no other.

    Raises NOT_FOUND for an address that is not theirs.
    """
    async with _member_writes(member_id):
        address = await _owned(member_id, address_id)
        if not address.is_default:
            await _clear_default(member_id)
            address.is_default = True
            await address.save(update_fields=["is_default", "updated_at"])
        return address

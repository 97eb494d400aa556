"""The signed-in member's delivery addresses: the type, its inputs and the mutation payloads."""

from __future__ import annotations

import strawberry

from models import Address as AddressModel
from schema.catalog_inputs import UserError
from schema.node import Node, encode_id


@strawberry.type(description="A delivery address of the signed-in member; nobody else can see it.")
class Address(Node):
    name: str = strawberry.field(description="The recipient.")
    phone: str = strawberry.field(
        description="The recipient's phone number in full: only the address's owner ever sees it."
    )
    province: str = strawberry.field(description="In full, e.g. 广东省.")
    city: str = strawberry.field(
        description="In full, e.g. 深圳市; in a municipality the municipality itself."
    )
    district: str = strawberry.field(description="e.g. 南山区.")
    detail: str = strawberry.field(description="Street, building and room.")
    is_default: bool = strawberry.field(description="Exactly one of a member's addresses is the default.")

    @classmethod
    def from_model(cls, m: AddressModel) -> Address:
        return cls(
            id=encode_id("Address", m.id),
            name=m.name,
            phone=m.phone,
            province=m.province,
            city=m.city,
            district=m.district,
            detail=m.detail,
            is_default=m.is_default,
        )


_REGION = (
    "The province, city and district must fit together. Names are taken in full (广东省, 深圳市, 南山区) or "
    "without the suffix (广东, 深圳, 南山) and stored in full."
)


@strawberry.input(description=f"A new address; a member keeps at most 20. {_REGION}")
class AddressInput:
    name: str = strawberry.field(description="The recipient, 1 to 32 characters.")
    phone: str = strawberry.field(
        description="A mainland mobile number (13800138000) or a landline with its area code (0755-12345678)."
    )
    province: str
    city: str
    district: str
    detail: str = strawberry.field(description="Street, building and room, 1 to 200 characters.")
    is_default: bool = strawberry.field(
        default=False, description="Make it the default. A member's first address is the default anyway."
    )


@strawberry.input(
    description=f"Only the fields given change; null leaves a field as it is. {_REGION} A change of one part "
    "of the region is checked against the others."
)
class AddressUpdateInput:
    name: str | None = None
    phone: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    detail: str | None = None
    is_default: bool | None = strawberry.field(
        default=None,
        description="true makes it the default. false on the default is refused: make another one the "
        "default instead.",
    )


@strawberry.type
class AddressCreatePayload:
    address: Address | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddressUpdatePayload:
    address: Address | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddressDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddressSetDefaultPayload:
    address: Address | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)

"""Inputs and payloads of the staff catalog mutations, and the `UserError` every mutation payload reports.

Money is integer fen. In the update inputs an omitted field is left as it is; so is one sent as null, except
where the description says null clears it.
"""

from __future__ import annotations

import strawberry

from schema.catalog import Brand, Category, MediaKind, Product, Sku, Tag
from services.errors import DomainError, ErrorCode, ValidationErrors

ErrorCodeEnum = strawberry.enum(
    ErrorCode, name="ErrorCode", description="What kind of failure an error is; clients branch on it."
)


@strawberry.type(description="Why a mutation did not do what was asked.")
class UserError:
    field: str | None = strawberry.field(
        description="The argument at fault as a path, e.g. `input.skus[1].price`; null for the whole request."
    )
    message: str
    code: ErrorCodeEnum


def user_errors(error: DomainError) -> list[UserError]:
    """The payload errors for a domain failure: one per problem of a ValidationErrors, else one."""
    problems = error.errors if isinstance(error, ValidationErrors) else [error]
    return [UserError(field=p.field, message=p.message, code=p.code) for p in problems]


# --- Inputs ----------------------------------------------------------------------------------------------

_UPDATE = (
    "Only the fields given change; null leaves a field as it is unless its description says it clears it."
)


@strawberry.input(description="A quantity discount: from `minQuantity` units on, each costs `price`.")
class TierPriceInput:
    min_quantity: int = strawberry.field(description="At least 2, ascending across the list.")
    price: int = strawberry.field(description="Unit price in fen, below the SKU's price.")


@strawberry.input(description="A SKU's value of one spec, e.g. name 颜色, value 红.")
class SpecValueInput:
    name: str
    value: str


@strawberry.input(description="A spec dimension and its values, e.g. 尺码: S, M, L (in display order).")
class SpecDimensionInput:
    name: str
    values: list[str]


@strawberry.input
class MediaInput:
    url: str = strawberry.field(description="An http(s) URL.")
    kind: MediaKind = MediaKind.IMAGE


@strawberry.input(description="One SKU: a combination of spec values with its own prices and stock.")
class SkuInput:
    spec_values: list[SpecValueInput] = strawberry.field(
        default_factory=list,
        description="One value for each of the product's specs. In `productCreate` each value must be "
        "declared in `specs`; a product declared without specs and with a single SKU that gives none gets "
        "the spec 规格 with the value 默认.",
    )
    price: int = strawberry.field(description="List price in fen, not negative.")
    original_price: int | None = strawberry.field(
        default=None, description="划线价 in fen, shown struck through; any non-negative amount."
    )
    member_price: int | None = strawberry.field(default=None, description="Price for members, in fen.")
    tier_prices: list[TierPriceInput] = strawberry.field(default_factory=list)
    stock: int = 0
    barcode: str = ""
    weight_grams: int = 0


@strawberry.input(description="A new SKU of an existing product.")
class SkuCreateInput(SkuInput):
    product_id: strawberry.ID = strawberry.field(
        description="The product. Spec values it does not have yet are added to its specs; a product without "
        "SKUs may also gain new specs this way."
    )


@strawberry.input(description=_UPDATE)
class SkuUpdateInput:
    price: int | None = strawberry.UNSET
    stock: int | None = strawberry.UNSET
    original_price: int | None = strawberry.field(default=strawberry.UNSET, description="null clears it.")
    member_price: int | None = strawberry.field(default=strawberry.UNSET, description="null clears it.")
    tier_prices: list[TierPriceInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the list; [] removes every tier."
    )
    barcode: str | None = strawberry.UNSET
    weight_grams: int | None = strawberry.UNSET


@strawberry.input(description="A new product with its specs and SKUs; it starts as a DRAFT.")
class ProductCreateInput:
    title: str = strawberry.field(description="1 to 120 characters.")
    subtitle: str = ""
    description: str = ""
    category_id: strawberry.ID = strawberry.field(description="A leaf (level-3) category.")
    brand_id: strawberry.ID | None = None
    tag_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    media: list[MediaInput] = strawberry.field(default_factory=list, description="In display order.")
    specs: list[SpecDimensionInput] = strawberry.field(
        default_factory=list,
        description="The spec dimensions every SKU chooses a value of. Leave empty for a product sold in one "
        "variant and give a single SKU without `specValues`: it gets the spec 规格 with the value 默认.",
    )
    skus: list[SkuInput] = strawberry.field(
        default_factory=list,
        description="Each a distinct combination of `specs` values. A product needs one "
        "to be published; more can be added with `skuCreate`.",
    )
    stock_warning: int = strawberry.field(default=10, description="Low-stock threshold on total stock.")


@strawberry.input(description=_UPDATE)
class ProductUpdateInput:
    title: str | None = strawberry.UNSET
    subtitle: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="A leaf category."
    )
    brand_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="null clears it.")
    tag_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the product's tags."
    )
    media: list[MediaInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the product's media."
    )
    stock_warning: int | None = strawberry.UNSET


@strawberry.input
class CategoryCreateInput:
    name: str
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="Omit for a root category. The tree has at most three levels."
    )
    sort: int = 0
    icon_url: str = ""


@strawberry.input(description=_UPDATE)
class CategoryUpdateInput:
    name: str | None = strawberry.UNSET
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Moves the category under another parent of the same level as its current one, so it "
        "keeps its level.",
    )
    sort: int | None = strawberry.UNSET
    icon_url: str | None = strawberry.UNSET


@strawberry.input
class BrandCreateInput:
    name: str
    logo_url: str = ""


@strawberry.input(description=_UPDATE)
class BrandUpdateInput:
    name: str | None = strawberry.UNSET
    logo_url: str | None = strawberry.UNSET


@strawberry.input
class TagCreateInput:
    name: str


@strawberry.input(description=_UPDATE)
class TagUpdateInput:
    name: str | None = strawberry.UNSET


# --- Payloads --------------------------------------------------------------------------------------------


@strawberry.type
class ProductCreatePayload:
    product: Product | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductUpdatePayload:
    product: Product | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductPublishPayload:
    product: Product | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductUnpublishPayload:
    product: Product | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SkuCreatePayload:
    sku: Sku | None = None
    product: Product | None = strawberry.field(
        default=None, description="The SKU's product, with new totals."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SkuUpdatePayload:
    sku: Sku | None = None
    product: Product | None = strawberry.field(
        default=None, description="The SKU's product, with new totals."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CategoryCreatePayload:
    category: Category | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CategoryUpdatePayload:
    category: Category | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CategoryDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BrandCreatePayload:
    brand: Brand | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BrandUpdatePayload:
    brand: Brand | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BrandDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TagCreatePayload:
    tag: Tag | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TagUpdatePayload:
    tag: Tag | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TagDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)

"""Rows a catalog write refers to, found (or reported as problems), locked, and the write's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import (
    DEFAULT_SHOP_CODE,
    MAX_CATEGORY_LEVEL,
    Brand,
    Category,
    Product,
    Shop,
    Tag,
)
from services.catalog.checks import Problems, not_found
from services.errors import DomainError, ErrorCode

# Staff write into the deployment's default shop (the one the demo seed fills); tests point this at their own.
SHOP_CODE = DEFAULT_SHOP_CODE
DEFAULT_SHOP_NAME = "Lianmall"


# --- Lookups ---------------------------------------------------------------------------------------------


async def default_shop_id() -> int:
    shop, _ = await Shop.get_or_create(code=SHOP_CODE, defaults={"name": DEFAULT_SHOP_NAME})
    return shop.id


async def find_leaf_category(
    problems: Problems, shop_id: int, category_id: int, field: str
) -> Category | None:
    category = await Category.get_or_none(id=category_id, shop_id=shop_id)
    if category is None:
        problems.errors.append(not_found("category", field))
    elif category.level != MAX_CATEGORY_LEVEL:
        problems.add(
            field,
            f"Products belong in a level-{MAX_CATEGORY_LEVEL} (leaf) category; "
            f"'{category.name}' is level {category.level}",
        )
    return category


async def find_brand(problems: Problems, shop_id: int, brand_id: int | None, field: str) -> Brand | None:
    if brand_id is None:
        return None
    brand = await Brand.get_or_none(id=brand_id, shop_id=shop_id)
    if brand is None:
        problems.errors.append(not_found("brand", field))
    return brand


async def find_tags(problems: Problems, shop_id: int, tag_ids: Sequence[int], field: str) -> list[int]:
    """The distinct tag ids in the order given; unknown ones are problems under `field[i]`."""
    wanted = list(dict.fromkeys(tag_ids))
    found = (
        set(await Tag.filter(id__in=wanted, shop_id=shop_id).values_list("id", flat=True))
        if wanted
        else set()
    )
    for i, tag_id in enumerate(tag_ids):
        if tag_id not in found:
            problems.errors.append(not_found("tag", f"{field}[{i}]"))
    return wanted


async def get_product(product_id: int, field: str) -> Product:
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise not_found("product", field)
    return product


async def lock_product(product_id: int, field: str) -> Product:
    # Every write to a product or its SKUs takes this row lock first, so two writers cannot both recompute
    # the price range and stock total from a view missing the other's change (PostgreSQL; SQLite has one
    # writer anyway and ignores FOR UPDATE).
    product = await Product.filter(id=product_id).select_for_update().first()
    if product is None:
        raise not_found("product", field)
    return product


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """One transaction; a unique or foreign key clash with a concurrent write becomes a CONFLICT."""
    try:
        async with in_transaction():
            yield
    except IntegrityError as exc:
        raise DomainError(
            ErrorCode.CONFLICT, "A concurrent change to the same records was saved first; try again"
        ) from exc

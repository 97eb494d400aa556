"""Catalog reads: which products a listing shows, in what order, one page at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from tortoise.expressions import Q, Subquery
from tortoise.fields import CharField, IntField, SmallIntField, TextField

from infra import raw_sql
from models import Category, Product, ProductStatus, ProductTag
from services.catalog import search
from services.errors import DomainError, ErrorCode

DEFAULT_PAGE_SIZE = 20


class ProductSort(StrEnum):
    RELEVANCE = "RELEVANCE"
    SALES = "SALES"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    NEWEST = "NEWEST"


_ORDERINGS: dict[ProductSort, tuple[str, ...]] = {
    ProductSort.SALES: ("-sales_count", "-id"),
    ProductSort.PRICE_ASC: ("min_price", "id"),
    ProductSort.PRICE_DESC: ("-min_price", "-id"),
    ProductSort.NEWEST: ("-published_at", "-id"),
}


@dataclass(frozen=True)
class ProductFilter:
    category_id: int | None = None
    tag_ids: tuple[int, ...] = ()
    brand_id: int | None = None
    keyword: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    include_unpublished: bool = False


@dataclass
class ProductPage:
    products: list[Sequence[Any]]
    offset: int
    has_next: bool
    search_terms: tuple[str, ...] = ()
    _count: Callable[[], Awaitable[int]] | None = field(default=None, repr=False)

    async def total_count(self) -> int:
        """Counted only when a client asks for it: it is a second query."""
        return await self._count() if self._count is not None else 0


def check_page_size(first: int | None, max_page_size: int) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "`first` must not be negative", "first")
    if first > max_page_size:
        raise DomainError(
            ErrorCode.PAGE_SIZE_EXCEEDED,
            f"`first` may be at most {max_page_size}; ask for the next page",
            "first",
        )
    return first


def _category_subtree(category_id: int) -> Q:
    # Paths are ancestor ids root-first and the tree is three levels deep, so a category's
    # descendants are exactly those whose path is it, starts with it or ends with it.
    return (
        Q(id=category_id)
        | Q(path=str(category_id))
        | Q(path__startswith=f"{category_id}/")
        | Q(path__endswith=f"/{category_id}")
    )


def _validate(filter: ProductFilter) -> None:
    if filter.price_min is not None and filter.price_min < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMin must not be negative", "filter.priceMin")
    if filter.price_max is not None and filter.price_max < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMax must not be negative", "filter.priceMax")
    if filter.price_min is not None and filter.price_max is not None and filter.price_min > filter.price_max:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMin is above priceMax", "filter.priceMin")
    if filter.keyword is not None and len(filter.keyword) > 64:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "keyword may be at most 64 characters", "filter.keyword")


async def list_products(
    filter: ProductFilter,
    sort: ProductSort | None,
    offset: int,
    limit: int,
    fields: tuple[str, ...],
) -> ProductPage:
    """One page of products matching `filter`, ordered by `sort` (relevance when searching, else sales): tuples
    of the values of `fields` (what read paths want: building model instances was a large share of a cold
    listing's time), as Tortoise would convert them."""
    _validate(filter)
    if not filter.keyword:
        return await _plain_listing(filter, sort or ProductSort.SALES, offset, limit, fields)
    qs = Product.all()
    if not filter.include_unpublished:
        qs = qs.filter(status=ProductStatus.ON_SALE)
    if filter.category_id is not None:
        subtree = Category.filter(_category_subtree(filter.category_id)).values("id")
        qs = qs.filter(category_id__in=Subquery(subtree))
    if filter.tag_ids:
        tagged = ProductTag.filter(tag_id__in=list(filter.tag_ids)).values("product_id")
        qs = qs.filter(id__in=Subquery(tagged))
    if filter.brand_id is not None:
        qs = qs.filter(brand_id=filter.brand_id)
    if filter.price_min is not None:
        qs = qs.filter(min_price__gte=filter.price_min)
    if filter.price_max is not None:
        qs = qs.filter(min_price__lte=filter.price_max)
    if filter.in_stock is True:
        qs = qs.filter(total_stock__gt=0)
    elif filter.in_stock is False:
        qs = qs.filter(total_stock=0)

    terms: tuple[str, ...] = ()
    match = await search.keyword_match(filter.keyword)
    if match is not None:
        terms = match.terms
        qs = qs.filter(match.condition)

    counted = qs
    sort = sort or (ProductSort.RELEVANCE if match else ProductSort.SALES)
    if sort is ProductSort.RELEVANCE:
        if match is not None:
            qs = search.with_relevance(qs, match).order_by("-relevance", "-sales_count", "-id")
        else:
            qs = qs.order_by(*_ORDERINGS[ProductSort.SALES])
    else:
        qs = qs.order_by(*_ORDERINGS[sort])

    rows = await qs.offset(offset).limit(limit + 1).values_list(*fields)
    return ProductPage(
        products=list(rows[:limit]),
        offset=offset,
        has_next=len(rows) > limit,
        search_terms=terms,
        _count=counted.count,
    )


# --- Without a keyword: fixed SQL -------------------------------------------------------------------------
#
# Building the page's statement and its count through Tortoise's query builder cost more CPU than the rest of
# a cold listing's SQL together; without a keyword the statement is a handful of plain conditions, written here
# (in PostgreSQL's dialect, infra/raw_sql.py runs it on SQLite too). The same conditions and order as the
# queryset above would build: the keyword path keeps the builder for its match and relevance expressions.

_PLAIN_ORDER: dict[ProductSort, str] = {
    ProductSort.RELEVANCE: "sales_count DESC, id DESC",
    ProductSort.SALES: "sales_count DESC, id DESC",
    ProductSort.PRICE_ASC: "min_price, id",
    ProductSort.PRICE_DESC: "min_price DESC, id DESC",
    ProductSort.NEWEST: "published_at DESC, id DESC",
}
# Columns whose database value is already what Tortoise would hand back.
_AS_STORED = (IntField, SmallIntField, CharField, TextField)


@cache
def _selected(fields: tuple[str, ...]) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The select list of `fields`, and the conversions (index, model field's own) of those that need one."""
    meta = Product._meta
    columns = ", ".join(meta.fields_db_projection[name] for name in fields)
    conversions = tuple(
        (index, meta.fields_map[name].to_python_value)
        for index, name in enumerate(fields)
        if type(meta.fields_map[name]) not in _AS_STORED
    )
    return columns, conversions


def _plain_conditions(filter: ProductFilter) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []

    def bound(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if not filter.include_unpublished:
        conditions.append(f"status = {bound(ProductStatus.ON_SALE.value)}")
    if filter.category_id is not None:
        # As `_category_subtree`: the category, and those whose path is it, starts with it or ends with it.
        category = filter.category_id
        conditions.append(
            f"category_id IN (SELECT id FROM categories WHERE id = {bound(category)} "
            f"OR path = {bound(str(category))} OR path LIKE {bound(f'{category}/%')} "
            f"OR path LIKE {bound(f'%/{category}')})"
        )
    if filter.tag_ids:
        tags = ", ".join(bound(tag) for tag in filter.tag_ids)
        conditions.append(f"id IN (SELECT product_id FROM product_tags WHERE tag_id IN ({tags}))")
    if filter.brand_id is not None:
        conditions.append(f"brand_id = {bound(filter.brand_id)}")
    if filter.price_min is not None:
        conditions.append(f"min_price >= {bound(filter.price_min)}")
    if filter.price_max is not None:
        conditions.append(f"min_price <= {bound(filter.price_max)}")
    if filter.in_stock is True:
        conditions.append("total_stock > 0")
    elif filter.in_stock is False:
        conditions.append("total_stock = 0")
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), params


async def _plain_listing(
    filter: ProductFilter, sort: ProductSort, offset: int, limit: int, fields: tuple[str, ...]
) -> ProductPage:
    where, params = _plain_conditions(filter)
    columns, conversions = _selected(fields)
    window = len(params) + 1
    statement = (
        f"SELECT {columns} FROM products{where} ORDER BY {_PLAIN_ORDER[sort]} "
        f"LIMIT ${window} OFFSET ${window + 1}"
    )
    rows = await raw_sql.fetch(statement, [*params, limit + 1, offset])
    products: list[Sequence[Any]] = []
    for values in rows[:limit]:
        if conversions:
            values = list(values)
            for index, convert in conversions:
                if values[index] is not None:
                    values[index] = convert(values[index])
        products.append(values)

    async def count() -> int:
        return int((await raw_sql.fetch(f"SELECT COUNT(*) FROM products{where}", params))[0][0])

    return ProductPage(products=products, offset=offset, has_next=len(rows) > limit, _count=count)

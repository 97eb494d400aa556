"""What checkout reads, each in one fixed statement and as plain values (not ORM instances): the buyer (their
pricing, points, openid, the order an idempotency key made and the chosen address) and the SKUs bought with what
checkout needs of their products (title, status, shop, scope, first image, spec text).

Building these through Tortoise (querysets, model instances, select_related) cost more CPU than the whole
order's SQL takes PostgreSQL; see bench/place_order_cpu.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from infra import raw_sql
from infra.clock import now
from services.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class AddressSnapshot:
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str


@dataclass(frozen=True)
class Buyer:
    """What checkout reads of the member in one statement: pricing (growth), points, the WeChat openid prepay
    needs, the order an idempotency key already made, and the chosen address (None: none chosen or not theirs)."""

    growth: int
    points: int
    openid: str
    existing_order_id: int | None
    address: AddressSnapshot | None
    holds_coupons: bool


_BUYER_SQL = (
    "SELECT m.growth, m.points, m.openid,"
    " (SELECT o.id FROM orders o WHERE o.member_id = $1 AND o.idempotency_key = $2),"
    " a.id, a.name, a.phone, a.province, a.city, a.district, a.detail,"
    " EXISTS (SELECT 1 FROM member_coupons c WHERE c.member_id = $1 AND c.status = 'UNUSED' AND c.valid_until > $4)"
    " FROM members m LEFT JOIN addresses a ON a.id = $3 AND a.member_id = $1 WHERE m.id = $1"
)


async def read_buyer(member_id: int, key: str, address_id: int | None) -> Buyer:
    """The member as checkout needs them, with the order `key` made (if any) and the address `address_id`."""
    rows = await raw_sql.fetch(_BUYER_SQL, [member_id, key, address_id or 0, now()])
    return _buyer(rows)


async def read_buyer_and_skus(
    member_id: int, key: str, address_id: int | None, sku_ids: Sequence[int]
) -> tuple[Buyer, dict[int, SkuRow] | None]:
    """`read_buyer` and, on PostgreSQL, `read_skus(sku_ids)` in the same statement (one round trip fewer for
    "buy now"); None for the SKUs on SQLite or without ids (then `read_skus` reads them)."""
    if not sku_ids or not raw_sql.is_postgres():
        return await read_buyer(member_id, key, address_id), None
    rows = await raw_sql.fetch(_BUYER_WITH_SKUS_PG, [member_id, key, address_id or 0, now(), list(sku_ids)])
    buyer = _buyer(rows)
    skus = {}
    for r in rows[0][12]:
        sku = _sku_row(r, r[14])
        skus[sku.id] = sku
    return buyer, skus


def _buyer(rows: Sequence[Sequence[Any]]) -> Buyer:
    if not rows:
        raise DomainError(ErrorCode.NOT_FOUND, "No member has this ID")
    row = rows[0]
    address = None if row[4] is None else AddressSnapshot(*(str(v) for v in row[5:11]))
    existing = None if row[3] is None else int(row[3])
    return Buyer(int(row[0] or 0), int(row[1] or 0), str(row[2] or ""), existing, address, bool(row[11]))


@dataclass(frozen=True)
class SkuRow:
    """A SKU as checkout reads it, with what it needs of its product (plain values, not ORM instances)."""

    id: int
    product_id: int
    price: int
    member_price: int | None
    tier_prices: list[dict[str, int]]
    stock: int
    title: str
    status: str
    shop_id: int
    shop_name: str
    category_id: int | None
    brand_id: int | None
    image_url: str
    spec: str
    category_path: str | None = None  # the category's ancestors ("/1/5/"), for promotion and coupon scopes


_SKU_COLUMNS = (
    "s.id, s.product_id, s.price, s.member_price, s.tier_prices, s.stock,"
    " p.title, p.status, p.shop_id, sh.name, p.category_id, p.brand_id,"
    " (SELECT m.url FROM product_media m WHERE m.product_id = p.id AND m.kind = 'IMAGE'"
    " ORDER BY m.sort, m.id LIMIT 1),"
    " (SELECT c.path FROM categories c WHERE c.id = p.category_id)"
)
_SKUS_FROM = " FROM skus s JOIN products p ON p.id = s.product_id JOIN shops sh ON sh.id = p.shop_id"
_SKUS_SQL = "SELECT " + _SKU_COLUMNS + "{spec}" + _SKUS_FROM + " WHERE s.id {{ids}}"
# PostgreSQL joins the spec text in the same statement; code point order ("C") is Python's string order.
_SPEC_PG = (
    ", (SELECT string_agg(d.name || ':' || v.value, ' ' ORDER BY d.sort, (d.name || ':' || v.value)"
    ' COLLATE "C") FROM sku_spec_values l JOIN spec_values v ON v.id = l.spec_value_id'
    " JOIN spec_dimensions d ON d.id = v.dimension_id WHERE l.sku_id = s.id)"
)
_SPECS_SQL = (
    "SELECT l.sku_id, d.sort, d.name, v.value FROM sku_spec_values l"
    " JOIN spec_values v ON v.id = l.spec_value_id JOIN spec_dimensions d ON d.id = v.dimension_id"
    " WHERE l.sku_id {ids}"
)


# The buyer's row with the SKUs as one array of records (asyncpg reads each as a tuple of the columns above).
_BUYER_WITH_SKUS_PG = _BUYER_SQL.replace(
    " FROM members m",
    f", ARRAY(SELECT ROW({_SKU_COLUMNS}{_SPEC_PG}){_SKUS_FROM} WHERE s.id = ANY($5::int[])) FROM members m",
    1,
)


async def read_skus(ids: Sequence[int]) -> dict[int, SkuRow]:
    """The SKUs with `ids` that exist, with what checkout needs of their products."""
    postgres = raw_sql.is_postgres()
    rows = await raw_sql.fetch_by_ids(_SKUS_SQL.format(spec=_SPEC_PG if postgres else ""), ids)
    specs: dict[int, list[tuple[int, str]]] = {}
    if not postgres and rows:
        for sku_id, sort, name, value in await raw_sql.fetch_by_ids(_SPECS_SQL, ids):
            specs.setdefault(int(sku_id), []).append((int(sort), f"{name}:{value}"))
    skus: dict[int, SkuRow] = {}
    for r in rows:
        sku_id = int(r[0])
        spec = r[14] if postgres else " ".join(text for _, text in sorted(specs.get(sku_id, [])))
        skus[sku_id] = _sku_row(r, spec)
    return skus


def _sku_row(r: Sequence[Any], spec: str | None) -> SkuRow:
    tiers = r[4]
    return SkuRow(
        id=int(r[0]),
        product_id=int(r[1]),
        price=int(r[2]),
        member_price=None if r[3] is None else int(r[3]),
        tier_prices=orjson.loads(tiers) if isinstance(tiers, str | bytes) else list(tiers or ()),
        stock=int(r[5]),
        title=str(r[6]),
        status=str(r[7]),
        shop_id=int(r[8]),
        shop_name=str(r[9]),
        category_id=None if r[10] is None else int(r[10]),
        brand_id=None if r[11] is None else int(r[11]),
        image_url=str(r[12] or ""),
        spec=str(spec or ""),
        category_path=None if r[13] is None else str(r[13]),
    )

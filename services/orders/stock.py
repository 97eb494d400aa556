"""Taking an order's stock inside its transaction: guarded decrements, never below zero.

`take_stock` takes the units an order buys (all or nothing: a SKU short of them is reported, the caller raises
and the transaction rolls back) and the units promotions give (while they last: a gift short of stock is left
out), and returns what the SKUs and their products hold afterwards (the stock event carries it).

Every SKU row, bought or given, is locked in one ascending id order, then every product row in ascending id
order, so concurrent orders whose lines and gifts overlap wait for each other instead of deadlocking. On
PostgreSQL it is one statement (locking reads in that order feed the updates); on SQLite, where a process's
transactions run one at a time, one guarded update per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tortoise.expressions import F

from infra import raw_sql
from models import Product, Sku


@dataclass(frozen=True)
class Taken:
    """A SKU's stock after the order took from it and its product's total stock after the order."""

    sku_id: int
    product_id: int
    stock: int
    product_stock: int


@dataclass(frozen=True)
class StockTaken:
    """What `take_stock` did: the SKUs taken from (ascending ids), the bought SKUs short of stock (nothing of
    the order may be kept then) and the gift units given per SKU."""

    taken: list[Taken]
    short: list[int]
    given: dict[int, int]


# `take`: all the SKU's units when its stock covers them, else the bought ones alone (the gift is left out),
# else none. Computed on the row as locked, which no one else can change before the update below.
_TAKE_PG = """
WITH wanted AS (
  SELECT * FROM unnest($1::int[], $2::int[], $3::int[]) AS w(sku_id, bought, given)
), skus_locked AS MATERIALIZED (
  SELECT s.id, w.bought,
    CASE WHEN s.stock >= w.bought + w.given THEN w.bought + w.given
         WHEN w.bought > 0 AND s.stock >= w.bought THEN w.bought ELSE 0 END AS take
  FROM skus s JOIN wanted w ON w.sku_id = s.id ORDER BY s.id FOR UPDATE OF s
), sold AS (
  UPDATE skus s SET stock = s.stock - l.take FROM skus_locked l
  WHERE s.id = l.id AND l.take > 0 AND s.stock >= l.take
  RETURNING s.id, s.product_id, s.stock, l.take, l.bought
), products_locked AS MATERIALIZED (
  SELECT p.id, x.take FROM products p
  JOIN (SELECT product_id, sum(take) AS take FROM sold GROUP BY product_id) x ON x.product_id = p.id
  ORDER BY p.id FOR UPDATE OF p
), totals AS (
  UPDATE products p SET total_stock = p.total_stock - l.take FROM products_locked l
  WHERE p.id = l.id RETURNING p.id, p.total_stock
)
SELECT sold.id, sold.product_id, sold.stock, totals.total_stock, sold.take, sold.bought
FROM sold JOIN totals ON totals.id = sold.product_id ORDER BY sold.id
"""


async def take_stock(bought: Mapping[int, int], gifts: Mapping[int, int] | None = None) -> StockTaken:
    """Take `bought[sku_id]` units of each SKU, and `gifts[sku_id]` units while they last, inside the
    caller's transaction (see the module)."""
    gifts = gifts or {}
    sku_ids = sorted(bought.keys() | gifts.keys())
    if raw_sql.is_postgres():
        rows = await raw_sql.fetch(
            _TAKE_PG,
            [sku_ids, [bought.get(s, 0) for s in sku_ids], [gifts.get(s, 0) for s in sku_ids]],
        )
        taken = [Taken(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]
        took = {int(r[0]): int(r[4]) for r in rows}
        short = [s for s in sku_ids if bought.get(s, 0) > 0 and took.get(s, 0) < bought[s]]
        given = {s: took[s] - bought.get(s, 0) for s in took if took[s] > bought.get(s, 0)}
        return StockTaken(taken, short, given)
    products = dict(await Sku.filter(id__in=sku_ids).values_list("id", "product_id"))
    short = []
    given = {}
    per_product: dict[int, int] = {}
    for sku_id in sku_ids:
        quantity = bought.get(sku_id, 0)
        if quantity and not await Sku.filter(id=sku_id, stock__gte=quantity).update(
            stock=F("stock") - quantity
        ):
            short.append(sku_id)
            continue
        gift = gifts.get(sku_id, 0)
        if gift and await Sku.filter(id=sku_id, stock__gte=gift).update(stock=F("stock") - gift):
            given[sku_id] = gift
            quantity += gift
        if quantity:
            per_product[products[sku_id]] = per_product.get(products[sku_id], 0) + quantity
    if short:
        return StockTaken([], short, {})
    for product_id, quantity in sorted(per_product.items()):
        await Product.filter(id=product_id).update(total_stock=F("total_stock") - quantity)
    taken_ids = [s for s in sku_ids if bought.get(s, 0) or s in given]
    rows = (
        await Sku.filter(id__in=taken_ids).order_by("id").values_list("id", "stock", "product__total_stock")
    )
    return StockTaken(
        [Taken(int(s), products[int(s)], int(stock), int(total)) for s, stock, total in rows], [], given
    )

"""Writing a placed order: the order row, its lines and its first event ("placed"), inside checkout's transaction.

On PostgreSQL the three inserts are one statement (the lines and the event take the order's id from the
order's insert), so writing an order is one round trip; on SQLite they go through Tortoise one by one. The
statement names every NOT NULL column of the three tables: a new NOT NULL column needs its value here too
(tests/test_checkout.py fails otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from infra import raw_sql
from infra.clock import now
from models import ActorKind, Order, OrderEvent, OrderLine, OrderStatus
from services.orders.stock import Taken

_ORDER_COLUMNS = (
    "number",
    "shop_id",
    "member_id",
    "status",
    "items_total",
    "discount",
    "shipping_fee",
    "points_used",
    "points_discount",
    "payable",
    "discounts",
    "paid_amount",
    "refunded_amount",
    "delivery",
    "address",
    "note",
    "idempotency_key",
    "pay_deadline",
    "cancel_reason",
    "carrier",
    "tracking_number",
    "created_at",
    "updated_at",
)
_JSON_COLUMNS = frozenset({"discounts", "address", "campaign"})
# Line columns and the PostgreSQL array type each travels in (JSON as text, cast per element).
_LINE_COLUMNS = (
    ("product_id", "int"),
    ("sku_id", "int"),
    ("title", "text"),
    ("spec", "text"),
    ("image_url", "text"),
    ("unit_price", "int"),
    ("quantity", "int"),
    ("line_total", "int"),
    ("campaign_kind", "text"),
    ("campaign_id", "int"),
    ("campaign", "text"),
    ("discount", "int"),
    ("points_discount", "int"),
    ("paid_total", "int"),
    ("discounts", "text"),
)


# Parameters: the order's columns ($1..), one array per line column, then the actor (the member).
_ORDER_MARKS = ", ".join(f"${i + 1}" for i in range(len(_ORDER_COLUMNS)))
_ACTOR_MARK = len(_ORDER_COLUMNS) + len(_LINE_COLUMNS) + 1


def _lines_and_event() -> str:
    """The CTEs `l` and `e`: the lines and the 'placed' event of the order the statement's `o` inserted."""
    first = len(_ORDER_COLUMNS) + 1
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(_LINE_COLUMNS))
    names = ", ".join(name for name, _ in _LINE_COLUMNS)
    picked = ", ".join(
        f"x.{name}::jsonb" if name in _JSON_COLUMNS else f"x.{name}" for name, _ in _LINE_COLUMNS
    )
    return (
        f" l AS (INSERT INTO order_lines (order_id, {names}, refunded_quantity, refunded_amount)"
        f" SELECT o.id, {picked}, 0, 0 FROM o, unnest({arrays}) WITH ORDINALITY AS x({names}, n)"
        " ORDER BY x.n RETURNING id),"
        " e AS (INSERT INTO order_events (order_id, from_status, to_status, actor, actor_id, reason, created_at)"
        f" SELECT o.id, NULL, '{OrderStatus.PENDING_PAYMENT.value}', '{ActorKind.MEMBER.value}', ${_ACTOR_MARK},"
        f" 'placed', ${len(_ORDER_COLUMNS)} FROM o)"
    )


def _statement() -> str:
    return (
        f"WITH o AS (INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ({_ORDER_MARKS}) RETURNING id),"
        + _lines_and_event()
        + " SELECT o.id, ARRAY(SELECT id FROM l ORDER BY id) FROM o"
    )


_INSERT_PG = _statement()


def _plain_statement() -> str:
    # The stock part is services/orders/stock.py's statement without gifts, all or nothing: `ready` says
    # whether every SKU exists and covers its quantity (read on the rows as locked), the updates run only then,
    # and the order is inserted only when every SKU was taken.
    skus, quantities, kinds = _ACTOR_MARK + 1, _ACTOR_MARK + 2, _ACTOR_MARK + 3
    return (
        f"WITH wanted AS (SELECT * FROM unnest(${skus}::int[], ${quantities}::int[]) AS w(sku_id, quantity)),"
        " skus_locked AS MATERIALIZED (SELECT s.id, w.quantity, s.stock >= w.quantity AS enough"
        " FROM skus s JOIN wanted w ON w.sku_id = s.id ORDER BY s.id FOR UPDATE OF s),"
        f" ready AS (SELECT count(*) = ${kinds} AND coalesce(bool_and(enough), false) AS ok FROM skus_locked),"
        " sold AS (UPDATE skus s SET stock = s.stock - l.quantity FROM skus_locked l, ready r"
        " WHERE r.ok AND s.id = l.id AND s.stock >= l.quantity RETURNING s.id, s.product_id, s.stock, l.quantity),"
        " products_locked AS MATERIALIZED (SELECT p.id, x.quantity FROM products p"
        " JOIN (SELECT product_id, sum(quantity) AS quantity FROM sold GROUP BY product_id) x"
        " ON x.product_id = p.id ORDER BY p.id FOR UPDATE OF p),"
        " totals AS (UPDATE products p SET total_stock = p.total_stock - l.quantity FROM products_locked l"
        " WHERE p.id = l.id RETURNING p.id, p.total_stock),"
        f" o AS (INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) SELECT {_ORDER_MARKS}"
        f" WHERE (SELECT count(*) FROM sold) = ${kinds} RETURNING id),"
        + _lines_and_event()
        + " SELECT (SELECT id FROM o), ARRAY(SELECT id FROM l ORDER BY id),"
        " ARRAY(SELECT ARRAY[sold.id, sold.product_id, sold.stock, totals.total_stock]"
        " FROM sold JOIN totals ON totals.id = sold.product_id ORDER BY sold.id),"
        # Some SKUs taken but not all cannot happen (the rows are locked when `ready` reads them); should it,
        # dividing by zero fails the statement, so nothing of it is kept.
        f" 1 / (CASE WHEN (SELECT count(*) FROM sold) IN (0, ${kinds}) THEN 1 ELSE 0 END)"
    )


_PLAIN_PG = _plain_statement()


@dataclass(frozen=True)
class WrittenWithStock:
    """A plain order written with its stock taken, or (order None) nothing written: a SKU was short."""

    written: Written | None
    taken: list[Taken]


async def write_plain_order(
    order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], bought: Mapping[int, int]
) -> WrittenWithStock:
    """On PostgreSQL, outside any transaction: the order as `write_order` writes it and its stock taken as
    `take_stock` takes it, in one statement, so all of it commits or none (a short SKU: nothing). For an order
    nothing else is written with (no campaign, coupon, points, cart lines or gifts): the hot SKU's row is
    locked only while PostgreSQL runs the statement, not while the event loop gets round to a COMMIT."""
    moment = now()
    instance = Order(**order, created_at=moment, updated_at=moment)
    params: list[Any] = [_db_value(getattr(instance, c), c in _JSON_COLUMNS) for c in _ORDER_COLUMNS]
    for name, _ in _LINE_COLUMNS:
        params.append([_db_value(line.get(name), name in _JSON_COLUMNS) for line in lines])
    wanted = sorted(bought.items())
    params += [order["member_id"], [s for s, _ in wanted], [q for _, q in wanted], len(wanted)]
    row = (await raw_sql.fetch(_PLAIN_PG, params))[0]
    if row[0] is None:
        return WrittenWithStock(None, [])
    taken = [Taken(int(t[0]), int(t[1]), int(t[2]), int(t[3])) for t in row[2]]
    instance.id = int(row[0])
    instance._saved_in_db = True
    return WrittenWithStock(Written(instance, [int(i) for i in row[1]]), taken)


@dataclass(frozen=True)
class Written:
    """The order as written (a saved model instance) and its lines' ids, in the order the lines were given."""

    order: Order
    line_ids: list[int]


def _db_value(value: Any, json: bool) -> Any:
    if json:
        return orjson.dumps(value).decode()
    return value.value if isinstance(value, Enum) else value


async def write_order(
    order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], *, line_ids: bool
) -> Written:
    """Insert the order (`order`: Order's fields; PENDING_PAYMENT, placed by its member), its `lines` (OrderLine's
    fields, without order_id) and its "placed" event, inside the caller's transaction. `line_ids`: whether the
    caller needs the lines' ids (SQLite reads them back only then)."""
    moment = now()
    instance = Order(**order, created_at=moment, updated_at=moment)
    member_id = order["member_id"]
    if raw_sql.is_postgres():
        params: list[Any] = [_db_value(getattr(instance, c), c in _JSON_COLUMNS) for c in _ORDER_COLUMNS]
        for name, _ in _LINE_COLUMNS:
            params.append([_db_value(line.get(name), name in _JSON_COLUMNS) for line in lines])
        params.append(member_id)
        row = (await raw_sql.fetch(_INSERT_PG, params))[0]
        instance.id = int(row[0])
        instance._saved_in_db = True
        return Written(instance, [int(i) for i in row[1]])
    await instance.save()
    await OrderLine.bulk_create([OrderLine(order_id=instance.id, **line) for line in lines])
    await OrderEvent.create(
        order_id=instance.id,
        from_status=None,
        to_status=OrderStatus.PENDING_PAYMENT,
        actor=ActorKind.MEMBER,
        actor_id=member_id,
        reason="placed",
    )
    ids: list[int] = []
    if line_ids:
        # bulk_create fills no ids; the lines were inserted in the order given.
        found = await OrderLine.filter(order_id=instance.id).order_by("id").values_list("id", flat=True)
        ids = [int(i) for i in found]  # type: ignore[arg-type]
    return Written(instance, ids)

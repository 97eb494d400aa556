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


def _statement() -> str:
    order_marks = ", ".join(f"${i + 1}" for i in range(len(_ORDER_COLUMNS)))
    first = len(_ORDER_COLUMNS) + 1
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(_LINE_COLUMNS))
    names = ", ".join(name for name, _ in _LINE_COLUMNS)
    picked = ", ".join(
        f"x.{name}::jsonb" if name in _JSON_COLUMNS else f"x.{name}" for name, _ in _LINE_COLUMNS
    )
    actor = first + len(_LINE_COLUMNS)
    return (
        f"WITH o AS (INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ({order_marks}) RETURNING id),"
        f" l AS (INSERT INTO order_lines (order_id, {names}, refunded_quantity, refunded_amount)"
        f" SELECT o.id, {picked}, 0, 0 FROM o, unnest({arrays}) WITH ORDINALITY AS x({names}, n)"
        " ORDER BY x.n RETURNING id),"
        " e AS (INSERT INTO order_events (order_id, from_status, to_status, actor, actor_id, reason, created_at)"
        f" SELECT o.id, NULL, '{OrderStatus.PENDING_PAYMENT.value}', '{ActorKind.MEMBER.value}', ${actor},"
        f" 'placed', ${len(_ORDER_COLUMNS)} FROM o)"
        " SELECT o.id, ARRAY(SELECT id FROM l ORDER BY id) FROM o"
    )


_INSERT_PG = _statement()


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

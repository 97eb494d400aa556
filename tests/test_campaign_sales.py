"""Reports tell campaign orders apart: `campaignSales` counts a window's paid orders by the way they were bought
(the shelf, a group buy, ...), with their units, goods and refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from tortoise import Tortoise

from infra.clock import now
from models import OrderLine, StaffRole
from tests.graphql_client import gql
from tests.test_cart import new_sku
from tests.test_group_buy import new_rule, open_group, staff
from tests.test_payments import paid_order
from tests.wechat_pay_standin import WeChatPayStandIn

SALES = """query($since: DateTime!, $until: DateTime!) { campaignSales(since: $since, until: $until) {
  kind orders units goodsAmount refundedAmount } }"""


async def sales(client: httpx.AsyncClient, token: str) -> dict[str | None, dict[str, Any]]:
    window = {
        "since": (now() - timedelta(days=1)).isoformat(),
        "until": (now() + timedelta(days=1)).isoformat(),
    }
    rows = (await gql(client, SALES, window, token))["data"]["campaignSales"]
    return {row["kind"]: row for row in rows}


def grew(
    before: dict[str | None, dict[str, Any]], after: dict[str | None, dict[str, Any]], kind: str | None
) -> dict[str, int]:
    zero = {"orders": 0, "units": 0, "goodsAmount": 0, "refundedAmount": 0}
    old, new = before.get(kind, zero), after.get(kind, zero)
    return {key: new[key] - old[key] for key in zero}


async def test_campaign_orders_are_told_apart_from_shelf_orders(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    analyst = await staff(StaffRole.ADMIN)
    before = await sales(client, analyst)
    shelf, _ = await paid_order(wechat_pay, quantities=(2,))
    sku = await new_sku(price=5000, stock=10)
    rule_id = await new_rule(client, sku)
    _, grouped = await open_group(client, wechat_pay, sku, rule_id)
    after = await sales(client, analyst)

    shelf_goods = sum(line.line_total for line in await OrderLine.filter(order_id=shelf.id))
    assert grew(before, after, None) == {
        "orders": 1,
        "units": 2,
        "goodsAmount": shelf_goods,
        "refundedAmount": 0,
    }
    assert grew(before, after, "GROUP_BUY") == {
        "orders": 1,
        "units": 1,
        "goodsAmount": 3000,
        "refundedAmount": 0,
    }
    assert grouped.id != shelf.id

    refused = await gql(
        client,
        SALES,
        {"since": now().isoformat(), "until": (now() + timedelta(days=40)).isoformat()},
        analyst,
        expect_errors=True,
    )
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    warehouse = await staff(StaffRole.WAREHOUSE)
    forbidden = await gql(
        client, SALES, {"since": now().isoformat(), "until": now().isoformat()}, warehouse, expect_errors=True
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_report_window_reads_orders_by_an_index_on_paid_at(database: None) -> None:
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "postgres":
        rows = await connection.execute_query_dict(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders'"
        )
        defs = [str(r["indexdef"]) for r in rows]
        assert any(d.endswith("(paid_at)") for d in defs), defs
    else:
        plan = await connection.execute_query_dict(
            "EXPLAIN QUERY PLAN SELECT id FROM orders WHERE paid_at >= ? AND paid_at < ?",
            [now() - timedelta(days=1), now()],
        )
        assert any("INDEX" in str(r["detail"]) and "paid_at" in str(r["detail"]) for r in plan), plan

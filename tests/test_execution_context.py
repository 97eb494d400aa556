"""An operation leaves no reference cycle behind: reference counting frees its executor, context and variables
when the answer is sent (schema/execution_context.py)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql.execution import Executor

from schema.node import encode_id
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE

pytestmark = pytest.mark.usefixtures("runtime")


@contextlib.contextmanager
def _left_for_the_collector() -> Iterator[list[Any]]:
    """What the cyclic collector alone would have freed meanwhile (collected now, kept for inspection)."""
    found: list[Any] = []
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_operations_leave_no_executor_to_the_cyclic_collector(
    client: httpx.AsyncClient, wechat_pay: Any
) -> None:
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    sku = await new_sku(price=1200, stock=20)
    items = [{"skuId": encode_id("Sku", sku.id), "quantity": 1}]
    gids = [encode_id("Sku", sku.id)]
    with _left_for_the_collector() as left:
        for i in range(5):
            variables = {"input": {"addressId": address, "items": items}, "key": f"gc-{i}"}
            placed = await client.post(
                "/graphql",
                json={"query": PLACE, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert placed.json()["data"]["placeOrder"]["errors"] == []
            shown = await client.post(
                "/graphql",
                json={"query": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", "variables": {"ids": gids}},
            )
            assert shown.json()["data"]["nodes"] == [{"id": gids[0]}]
    executors = [o for o in left if isinstance(o, Executor)]
    assert executors == [], f"{len(executors)} executors (and what they hold) left to the cyclic collector"

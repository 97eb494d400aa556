"""Input errors name input fields: every `field` an error carries is a path into the arguments of the field
that reported it, never a service's variable or an output.

The test client checks every answer of the suite (tests/error_fields.py); here a table of bad inputs provokes
the errors the other tests do not, and `checkoutPreview` refuses exactly what `placeOrder` refuses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from models import Member, Order, StaffRole
from schema.node import encode_id
from schema.root import schema
from services.access.staff import create_staff
from tests.error_fields import error_field_problems, path_problem
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
PREVIEW = f"query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ preview {{ pointsUsed }} {ERRORS} }} }}"
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{
  placeOrder(input: $input, idempotencyKey: $key) {{ order {{ id }} {ERRORS} }} }}"""


def _field(root: str, name: str) -> Any:
    root_type = schema._schema.mutation_type if root == "mutation" else schema._schema.query_type
    return root_type.fields[name]  # type: ignore[union-attr]


def test_paths_are_checked_against_the_arguments() -> None:
    place = _field("mutation", "placeOrder")
    for good in ("input", "input.pointsToUse", "input.items", "input.items[3].skuId", "idempotencyKey"):
        assert path_problem(place, good) is None, good
    for bad in ("delta", "payParams", "input.points", "input.items.skuId", "input[0]", "input.note.x", "a b"):
        assert path_problem(place, bad) is not None, bad
    batch = _field("mutation", "orderShipBatch")
    assert path_problem(batch, "rows[2].trackingNumber") is None
    assert path_problem(batch, "id") is not None


def test_answers_are_swept_for_payload_and_graphql_errors() -> None:
    query = f"""mutation Ship($r: [OrderShipInput!]!) {{ shipped: orderShipBatch(rows: $r) {{
      results {{ errors {{ field }} }} {ERRORS} }} }}"""
    good = {"data": {"shipped": {"results": [{"errors": [{"field": "rows[0].orderId"}]}], "errors": []}}}
    bad = {"data": {"shipped": {"results": [{"errors": [{"field": "id"}]}], "errors": [{"field": "delta"}]}}}
    assert error_field_problems(schema._schema, query, good) == []
    assert len(error_field_problems(schema._schema, query, bad)) == 2
    read = "query($id: ID!) { a: product(id: $id) { id } }"
    coded = {"data": {"a": None}, "errors": [{"path": ["a"], "extensions": {"code": "INVALID_ID"}}]}
    assert error_field_problems(schema._schema, read, _with_field(coded, "id")) == []
    assert error_field_problems(schema._schema, read, _with_field(coded, "productId")) != []


def _with_field(body: dict[str, Any], field: str) -> dict[str, Any]:
    error = {**body["errors"][0], "extensions": {**body["errors"][0]["extensions"], "field": field}}
    return {**body, "errors": [error]}


async def test_preview_refuses_points_beyond_the_balance_as_place_order_does(
    client: httpx.AsyncClient,
) -> None:
    member, token = await new_member(points=300)
    address = encode_id("Address", await new_address(member))
    sku = await new_sku(price=20000, stock=5)
    input = {"addressId": address, "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1}]}

    for points, expected in ((500, [("input.pointsToUse", "INSUFFICIENT_POINTS")]), (300, [])):
        preview = (await gql(client, PREVIEW, {"input": {**input, "pointsToUse": points}}, token))["data"]
        placed = await gql(
            client, PLACE, {"input": {**input, "pointsToUse": points}, "key": f"k{points}"}, token
        )
        refused = [(e["field"], e["code"]) for e in preview["checkoutPreview"]["errors"]]
        assert refused == expected
        placed_errors = [(e["field"], e["code"]) for e in placed["data"]["placeOrder"]["errors"]]
        # Both refuse alike; an accepted order only fails to start WeChat Pay (no merchant in this test).
        assert [e for e in placed_errors if e[1] != "PAYMENT_UNAVAILABLE"] == expected
    assert (await Member.get(id=member.id)).points == 0, "only the order within the balance spent points"
    assert await Order.filter(member_id=member.id).count() == 1


@dataclass(frozen=True)
class Bad:
    """A call with bad input, as `who` ("member" or "admin") sends it."""

    query: str
    variables: dict[str, Any]
    who: str = "member"


def _bad_inputs(sku: str, address: str) -> dict[str, Bad]:
    return {
        "addressCreate": Bad(
            f"mutation($i: AddressInput!) {{ addressCreate(input: $i) {{ {ERRORS} }} }}",
            {"i": {"name": "", "phone": "1", "province": "火星", "city": "x", "district": "y", "detail": ""}},
        ),
        "updateProfile": Bad(
            f"mutation($i: UpdateProfileInput!) {{ updateProfile(input: $i) {{ {ERRORS} }} }}",
            {"i": {"avatarUrl": "ftp://x", "nickname": ""}},
        ),
        "cartAddItem": Bad(
            f"mutation($s: ID!) {{ cartAddItem(skuId: $s, quantity: 0) {{ {ERRORS} }} }}", {"s": sku}
        ),
        "cartSelect": Bad(
            f"mutation($s: [ID!]!) {{ cartSelect(skuIds: $s, selected: true) {{ {ERRORS} }} }}",
            {"s": [sku, "bm9wZQ=="]},
        ),
        "placeOrder": Bad(
            PLACE,
            {
                "input": {"addressId": address, "items": [{"skuId": sku, "quantity": 0}], "note": "x" * 300},
                "key": "",
            },
        ),
        "placeOrder (items)": Bad(
            PLACE,
            {
                "input": {"addressId": address, "items": [{"skuId": sku, "quantity": 100}], "fromCart": True},
                "key": "k",
            },
        ),
        "placeOrder (points)": Bad(
            PLACE,
            {
                "input": {
                    "addressId": address,
                    "items": [{"skuId": sku, "quantity": 1}],
                    "pointsToUse": 10**6,
                },
                "key": "p",
            },
        ),
        "cartUpdateItem": Bad(
            f"mutation($s: ID!) {{ cartUpdateItem(skuId: $s, quantity: -1) {{ {ERRORS} }} }}", {"s": sku}
        ),
        "addressUpdate": Bad(
            f"""mutation($id: ID!) {{ addressUpdate(id: $id, input: {{city: "纽约", phone: "x"}}) {{ {ERRORS} }} }}""",
            {"id": address},
        ),
        "checkoutPreview": Bad(
            PREVIEW, {"input": {"items": [{"skuId": sku, "quantity": 1}], "pointsToUse": -1}}
        ),
        "orderPay": Bad(
            f"mutation($o: ID!) {{ orderPay(orderId: $o) {{ {ERRORS} }} }}",
            {"o": encode_id("Order", 2**31 - 1)},
        ),
        "orderCancel": Bad(
            f'mutation($o: ID!) {{ orderCancel(id: $o, reason: "{"x" * 300}") {{ {ERRORS} }} }}',
            {"o": encode_id("Order", 2**31 - 1)},
        ),
        "afterSaleRequest": Bad(
            f"mutation($i: AfterSaleRequestInput!) {{ afterSaleRequest(input: $i) {{ {ERRORS} }} }}",
            {"i": {"orderId": "bm9wZQ==", "kind": "REFUND_ONLY", "lines": [{"lineId": "x", "quantity": 0}]}},
        ),
        "bindInviter": Bad(f'mutation {{ bindInviter(code: "NOPE") {{ {ERRORS} }} }}', {}),
        "productCreate": Bad(
            f"mutation($i: ProductCreateInput!) {{ productCreate(input: $i) {{ {ERRORS} }} }}",
            {
                "i": {
                    "title": "",
                    "categoryId": encode_id("Category", 2**31 - 1),
                    "skus": [{"price": 100}, {"price": -1, "tierPrices": [{"minQuantity": 1, "price": 200}]}],
                }
            },
            "admin",
        ),
        "skuUpdate": Bad(
            f"mutation($id: ID!) {{ skuUpdate(id: $id, input: {{price: -5, stock: -1}}) {{ {ERRORS} }} }}",
            {"id": sku},
            "admin",
        ),
        "levelCreate": Bad(
            f"mutation($i: MemberLevelCreateInput!) {{ levelCreate(input: $i) {{ {ERRORS} }} }}",
            {"i": {"name": "", "minGrowth": -1, "discountPercent": 0}},
            "admin",
        ),
        "staffCreate": Bad(
            f'mutation {{ staffCreate(input: {{name: "", role: WAREHOUSE}}) {{ {ERRORS} }} }}', {}, "admin"
        ),
        "apiKeyCreate": Bad(
            f'mutation {{ apiKeyCreate(input: {{name: "ERP", scopes: ["all:write"]}}) {{ {ERRORS} }} }}',
            {},
            "admin",
        ),
        "refundOrder": Bad(
            f"""mutation($o: ID!) {{ refundOrder(orderId: $o, input: {{reason: "", amount: -1,
              lines: [{{lineId: "x", quantity: 0}}]}}, idempotencyKey: "") {{ {ERRORS} }} }}""",
            {"o": encode_id("Order", 2**31 - 1)},
            "admin",
        ),
        "refundOrder (amount)": Bad(
            f"""mutation($o: ID!) {{ refundOrder(orderId: $o, input: {{reason: "退", amount: -1}},
              idempotencyKey: "r1") {{ {ERRORS} }} }}""",
            {"o": encode_id("Order", 2**31 - 1)},
            "admin",
        ),
        "orderShipBatch": Bad(
            f"""mutation($o: ID!) {{ orderShipBatch(rows: [{{orderId: $o, carrier: "", trackingNumber: ""}}])
              {{ results {{ {ERRORS} }} {ERRORS} }} }}""",
            {"o": encode_id("Order", 2**31 - 1)},
            "admin",
        ),
    }


async def test_bad_inputs_are_refused_naming_input_fields(client: httpx.AsyncClient) -> None:
    member, member_token = await new_member()
    _, admin_token = await create_staff(f"fields-{secrets.token_hex(3)}", StaffRole.ADMIN)
    sku = encode_id("Sku", (await new_sku()).id)
    address = encode_id("Address", await new_address(member))
    tokens = {"member": member_token, "admin": admin_token}
    named = 0
    for name, bad in _bad_inputs(sku, address).items():
        # The test client fails on any error field that is not an input path; each call must be refused.
        body = await gql(client, bad.query, bad.variables, tokens[bad.who])
        (payload,) = body["data"].values()
        errors = payload["errors"] + [e for r in payload.get("results", []) for e in r["errors"]]
        assert errors, f"{name} accepted bad input"
        named += sum(1 for e in errors if e["field"])
    assert named >= len(_bad_inputs(sku, address)), "most refusals should say which input is at fault"

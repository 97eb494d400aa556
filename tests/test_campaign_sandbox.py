"""Group buy and presale in the built-in WeChat sandbox: on a served embedded default, staff set each play up
through the API and shoppers complete it through the API alone, paying with `sandboxPay` (our WeChat Pay code
talking to the sandbox, whose signed notifications settle every payment)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND
from tests.server_process import ServerProcess, child_env, run_cli, running_server

pytestmark = pytest.mark.skipif(
    BACKEND == "real", reason="the sandbox exists only on the embedded default (that pass runs it)"
)

LOGIN = """mutation($code: String!) { loginWithWechat(code: $code) { accessToken errors { code } } }"""
SKU = """{ products(first: 1, filter: { inStock: true }) { edges { node { skus { id price stock } } } } }"""
PLACE = """mutation($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) {
  order { id status payable } errors { field message code } } }"""
PAY = """mutation($orderId: ID!) { sandboxPay(orderId: $orderId) {
  order { status paidAmount } errors { field message code } } }"""
GROUP_RULE = """mutation($input: GroupBuyRuleInput!) { groupBuyRuleCreate(input: $input) {
  rule { id } errors { field message code } } }"""
GROUP = """query($id: ID!) { groupBuy(id: $id) { status seatsLeft members { leader } } }"""
OPEN_GROUPS = """query($productId: ID) { groupBuyRules(productId: $productId, first: 5) {
  edges { node { id openGroups { id } } } } }"""
PRESALE = """mutation($input: PresaleInput!) { presaleCreate(input: $input) {
  presale { id } errors { field message code } } }"""
PRESALE_ORDER = """query($orderId: ID!) { presaleOrder(orderId: $orderId) { stage deposit balance } }"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campaign-sandbox")


@pytest.fixture(scope="module")
async def server(data_dir: Path) -> AsyncIterator[ServerProcess]:
    async with running_server(child_env({"DATA_DIR": str(data_dir)}), cwd=data_dir, startup_timeout=180) as s:
        yield s


async def staff_token(data_dir: Path, name: str) -> str:
    made = await run_cli(["create-staff", name], child_env({"DATA_DIR": str(data_dir)}), cwd=data_dir)
    return made.last_line


async def login(server: ServerProcess, code: str) -> str:
    return str((await server.gql(LOGIN, {"code": code}))["loginWithWechat"]["accessToken"])


async def ok(server: ServerProcess, query: str, variables: dict[str, Any], token: str | None) -> Any:
    (payload,) = (await server.gql(query, variables, token)).values()
    assert not payload.get("errors"), payload
    return payload


def item(sku_id: str, kind: str, campaign_id: str) -> dict[str, Any]:
    return {
        "delivery": "PICKUP",
        "items": [{"skuId": sku_id, "quantity": 1, "campaign": {"kind": kind, "id": campaign_id}}],
    }


async def a_sku(server: ServerProcess) -> dict[str, Any]:
    product = (await server.gql(SKU))["products"]["edges"][0]["node"]
    return dict(product["skus"][0])


async def test_two_friends_complete_a_group_buy_in_the_sandbox(server: ServerProcess, data_dir: Path) -> None:
    staff = await staff_token(data_dir, "groupbuy-staff")
    sku = await a_sku(server)
    at = datetime.now().astimezone()
    rule = await ok(
        server,
        GROUP_RULE,
        {
            "input": {
                "skuId": sku["id"],
                "title": "两人团",
                "groupPrice": max(1, sku["price"] // 2),
                "groupSize": 2,
                "hoursToFill": 24,
                "perMemberLimit": 1,
                "startsAt": (at - timedelta(minutes=1)).isoformat(),
                "endsAt": (at + timedelta(days=1)).isoformat(),
            }
        },
        staff,
    )
    rule_id = rule["rule"]["id"]
    alice = await login(server, "groupbuy-alice")
    placed = await ok(server, PLACE, {"input": item(sku["id"], "GROUP_BUY", rule_id), "key": "gb-1"}, alice)
    paid = await ok(server, PAY, {"orderId": placed["order"]["id"]}, alice)
    assert paid["order"]["status"] == "PAID"

    # Bob finds the open group (the share link) and joins it.
    bob = await login(server, "groupbuy-bob")
    rules = (await server.gql(OPEN_GROUPS, {"productId": None}, bob))["groupBuyRules"]["edges"]
    [group_id] = [g["id"] for e in rules if e["node"]["id"] == rule_id for g in e["node"]["openGroups"]]
    shown = (await server.gql(GROUP, {"id": group_id}, bob))["groupBuy"]
    assert (shown["status"], shown["seatsLeft"]) == ("OPEN", 1)
    joined = await ok(server, PLACE, {"input": item(sku["id"], "GROUP_BUY", group_id), "key": "gb-2"}, bob)
    await ok(server, PAY, {"orderId": joined["order"]["id"]}, bob)
    shown = (await server.gql(GROUP, {"id": group_id}, bob))["groupBuy"]
    assert (shown["status"], shown["seatsLeft"], len(shown["members"])) == ("SUCCEEDED", 0, 2)


async def test_a_shopper_pays_a_presale_deposit_then_its_balance_in_the_sandbox(
    server: ServerProcess, data_dir: Path
) -> None:
    staff = await staff_token(data_dir, "presale-staff")
    sku = await a_sku(server)
    at = datetime.now().astimezone()
    # The deposit window closes, and the balance window opens, a few seconds from now.
    opens = at + timedelta(seconds=8)
    made = await ok(
        server,
        PRESALE,
        {
            "input": {
                "skuId": sku["id"],
                "title": "预售",
                "price": 20000,
                "deposit": 5000,
                "depositWorth": 10000,
                "perMemberLimit": 1,
                "depositStartsAt": (at - timedelta(minutes=1)).isoformat(),
                "depositEndsAt": opens.isoformat(),
                "balanceStartsAt": opens.isoformat(),
                "balanceEndsAt": (at + timedelta(days=1)).isoformat(),
            }
        },
        staff,
    )
    carol = await login(server, "presale-carol")
    placed = await ok(
        server, PLACE, {"input": item(sku["id"], "PRESALE", made["presale"]["id"]), "key": "ps-1"}, carol
    )
    order_id = placed["order"]["id"]
    assert placed["order"]["payable"] == 15000
    deposit = await ok(server, PAY, {"orderId": order_id}, carol)
    assert (deposit["order"]["status"], deposit["order"]["paidAmount"]) == ("PENDING_PAYMENT", 5000)
    stage = (await server.gql(PRESALE_ORDER, {"orderId": order_id}, carol))["presaleOrder"]
    assert stage == {"stage": "DEPOSIT_PAID", "deposit": 5000, "balance": 10000}

    early = (await server.gql(PAY, {"orderId": order_id}, carol))["sandboxPay"]
    if early["errors"]:
        assert [e["code"] for e in early["errors"]] == ["ORDER_NOT_PAYABLE"]
        await asyncio.sleep(max(0.0, opens.timestamp() - time.time()) + 0.5)
        balance = await ok(server, PAY, {"orderId": order_id}, carol)
    else:
        balance = early  # the machine was slow enough for the window to have opened already
    assert (balance["order"]["status"], balance["order"]["paidAmount"]) == ("PAID", 15000)
    stage = (await server.gql(PRESALE_ORDER, {"orderId": order_id}, carol))["presaleOrder"]
    assert stage["stage"] == "BALANCE_PAID"

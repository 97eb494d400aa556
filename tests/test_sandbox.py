"""The built-in WeChat sandbox: a newcomer walks the README's shopper day on the embedded default, through the
public API of a served process (our WeChat and WeChat Pay code talking HTTP to the sandbox's routes), and the
sandbox can never be turned on where it could touch real shoppers or money. On the same served process, staff set
up a group buy and a presale through the API and shoppers complete each play, paying with `sandboxPay`."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from infra.settings import Settings
from tests.conftest import BACKEND
from tests.content_support import png_image
from tests.graphql_client import gql
from tests.server_process import ServerProcess, child_env, run_cli, running_server

README = Path(__file__).resolve().parent.parent / "README.md"
DAY = [
    "SandboxLogin",
    "SandboxBrowse",
    "SandboxAddToCart",
    "SandboxCheckout",
    "SandboxWatchOrder",
    "SandboxPay",
    "SandboxRefund",
    "SandboxMoney",
]
EVENT_TIMEOUT = 10.0


def readme_day() -> dict[str, str]:
    """The GraphQL operations of the README's sandbox section, by operation name."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A shopper's day in GraphiQL", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```graphql\n(.*?)```", section, flags=re.S)
    named = {re.search(r"(?:query|mutation|subscription) (\w+)", b).group(1): b for b in blocks}  # type: ignore[union-attr]
    assert list(named) == DAY, "the README's sandbox day changed: walk the new one here too"
    return named


# --- Turning it on and off ---------------------------------------------------------------------------------


def test_the_sandbox_is_on_only_for_the_embedded_default_without_credentials() -> None:
    embedded = Settings(DATABASE_URL=None, WECHAT_SANDBOX=None, PUBLIC_BASE_URL="http://127.0.0.1:9000")
    assert embedded.wechat_sandbox is True
    assert embedded.wechat_api_base_url == "http://127.0.0.1:9000/sandbox/wechat/"
    assert embedded.wechat_pay_api_base_url == "http://127.0.0.1:9000/sandbox/wechat-pay/"
    assert embedded.wechat_appid and embedded.wechat_secret and embedded.wechat_pay_api_key

    for quiet in (
        Settings(DATABASE_URL="postgres://db/shop", WECHAT_SANDBOX=None),
        Settings(DATABASE_URL=None, WECHAT_SANDBOX=None, WECHAT_APPID="wx1234", WECHAT_SECRET="s"),
        Settings(DATABASE_URL=None, WECHAT_SANDBOX=False),
    ):
        assert quiet.wechat_sandbox is False and quiet.wechat_sandbox_refusal is None
        assert "sandbox" not in quiet.wechat_api_base_url + quiet.wechat_pay_api_base_url

    forced = Settings(DATABASE_URL="postgres://db/shop", WECHAT_SANDBOX=True, WECHAT_MCH_ID="1900000109")
    assert forced.wechat_sandbox is False
    assert forced.wechat_sandbox_refusal is not None
    assert "DATABASE_URL, WECHAT_MCH_ID" in forced.wechat_sandbox_refusal


async def test_forcing_the_sandbox_next_to_a_database_stops_serve_before_anything_runs(
    tmp_path: Path,
) -> None:
    env = child_env(
        {
            "DATA_DIR": str(tmp_path),
            "WECHAT_SANDBOX": "true",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        }
    )
    result = await run_cli(["serve", "--port", "1"], env, cwd=tmp_path, time_limit=60)
    assert result.returncode == 2, result.describe()
    assert "WECHAT_SANDBOX=true cannot be used with DATABASE_URL" in result.stderr, result.describe()
    assert not (tmp_path / "lianmall.sqlite3").exists(), "nothing may run before the refusal"


async def test_an_app_with_a_forced_sandbox_and_credentials_does_not_start() -> None:
    # `uvicorn main:app` skips the CLI: the app's own start-up refuses.
    from main import create_app

    forced = Settings(
        DATABASE_URL=None, WECHAT_SANDBOX=True, WECHAT_APPID="wx0123456789abcdef", WECHAT_SECRET="s"
    )
    app = create_app(forced)
    with pytest.raises(RuntimeError, match="cannot be used with WECHAT_APPID, WECHAT_SECRET"):
        async with app.router.lifespan_context(app):
            pass


async def test_without_the_sandbox_there_are_no_sandbox_routes_or_payments(
    runtime: object, client: httpx.AsyncClient
) -> None:
    answer = await client.get("/sandbox/wechat/cgi-bin/token?grant_type=client_credential")
    assert answer.status_code == 404
    from models import Member
    from schema.node import encode_id
    from services.members.tokens import issue_tokens

    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    token = (await issue_tokens(member)).access_token
    body = await gql(
        client,
        "mutation($o: ID!) { sandboxPay(orderId: $o) { order { id } errors { field code } } }",
        {"o": encode_id("Order", 1)},
        token,
    )
    assert body["data"]["sandboxPay"]["errors"] == [{"field": None, "code": "FORBIDDEN"}]


# --- The README's day ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-day")


@pytest.fixture(scope="module")
async def sandbox_server(sandbox_dir: Path) -> AsyncIterator[ServerProcess]:
    """`serve` on a fresh data folder without WeChat settings: the sandbox stands in for WeChat."""
    env = child_env({"DATA_DIR": str(sandbox_dir)})
    async with running_server(env, cwd=sandbox_dir, startup_timeout=60) as server:
        yield server


async def _ok(server: ServerProcess, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The root field's payload, which must carry no errors."""
    (payload,) = (await server.gql(query, variables, token)).values()
    assert not (isinstance(payload, dict) and payload.get("errors")), payload
    return payload


async def _image_status(server: ServerProcess, image_id: str, token: str) -> str:
    """The image's moderation status once it is no longer PENDING (or PENDING after EVENT_TIMEOUT)."""
    query = "query($id: ID!) { node(id: $id) { ... on Image { status } } }"
    async with asyncio.timeout(EVENT_TIMEOUT):
        while True:
            status = str((await server.gql(query, {"id": image_id}, token))["node"]["status"])
            if status != "PENDING":
                return status
            await asyncio.sleep(0.2)


class OrderWatch:
    """The README's subscription, as GraphiQL sends it: graphql-transport-ws, the editor's headers as the
    `connection_init` payload."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def start(self, query: str, order_id: str, token: str) -> None:
        await self.ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            ).decode()
        )
        assert orjson.loads(await self.ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": {"orderId": order_id}}
        await self.ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())

    async def next_status(self) -> str:
        async with asyncio.timeout(EVENT_TIMEOUT):
            while True:
                message = orjson.loads(await self.ws.recv())
                if message["type"] == "ping":
                    await self.ws.send(orjson.dumps({"type": "pong"}).decode())
                    continue
                assert message["type"] == "next", message
                assert "errors" not in message["payload"], message
                return str(message["payload"]["data"]["orderStatusChanged"]["status"])


@pytest.mark.skipif(
    BACKEND == "real", reason="the sandbox exists only on the embedded default (that pass runs it)"
)
async def test_a_newcomer_walks_the_readme_day_in_the_sandbox(
    sandbox_server: ServerProcess, sandbox_dir: Path
) -> None:
    day = readme_day()
    server = sandbox_server

    # 1. Any code logs in; the same code is the same shopper.
    login = await _ok(server, day["SandboxLogin"], {}, None)
    token = login["accessToken"]
    again = await _ok(server, day["SandboxLogin"], {}, None)
    assert again["member"]["id"] == login["member"]["id"]
    other = await server.gql('mutation { loginWithWechat(code: "bob") { member { id } } }')
    assert other["loginWithWechat"]["member"]["id"] != login["member"]["id"]

    # Phone and content security go through WeChat's APIs in the sandbox too.
    phone = await _ok(
        server,
        'mutation { bindPhone(code: "13912345678") { member { phoneMasked } errors { code } } }',
        {},
        token,
    )
    assert phone["member"]["phoneMasked"] == "139****5678"
    risky = await server.gql(
        'mutation { updateProfile(input: {nickname: "违禁品"}) { errors { field code } } }', token=token
    )
    assert risky["updateProfile"]["errors"] == [{"field": "input.nickname", "code": "CONTENT_REJECTED"}]

    # An image's check answers later, as WeChat's encrypted event push to our message endpoint.
    sent = await server.http.post(
        server.url.replace("/graphql", "/uploads"),
        files={"file": ("a.png", png_image(), "image/png")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code == 201 and sent.json()["status"] == "PENDING", sent.text
    assert await _image_status(server, sent.json()["id"], token) == "PASSED"

    # 2-4. Browse, fill the cart, check out.
    listing = (await server.gql(day["SandboxBrowse"], token=token))["products"]["edges"]
    sku = next(s for edge in listing for s in edge["node"]["skus"] if s["stock"] > 0)
    await _ok(server, day["SandboxAddToCart"], {"skuId": sku["id"]}, token)
    placed = await _ok(server, day["SandboxCheckout"], {}, token)
    order_id = placed["order"]["id"]
    assert placed["order"]["status"] == "PENDING_PAYMENT" and placed["order"]["payable"] == sku["price"]
    assert placed["payParams"]["package"].startswith("prepay_id=")

    async with connect(
        server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5
    ) as ws:
        # 5. Watch the order live.
        watch = OrderWatch(ws)
        await watch.start(day["SandboxWatchOrder"], order_id, token)
        # 6. Pay: the sandbox's notification makes it PAID, and the subscription says so.
        paid = await _ok(server, day["SandboxPay"], {"orderId": order_id}, token)
        assert paid["order"] == {"status": "PAID", "paidAmount": sku["price"]}
        assert await watch.next_status() == "PAID"

        # 7. Customer service refunds it; the sandbox's refund notification completes it on its own.
        staff = await run_cli(
            ["create-staff", "alice"], child_env({"DATA_DIR": str(sandbox_dir)}), cwd=sandbox_dir
        )
        assert staff.returncode == 0, staff.describe()
        refund = await _ok(server, day["SandboxRefund"], {"orderId": order_id}, staff.last_line)
        assert refund["refund"]["status"] in ("PENDING", "SUCCEEDED")
        assert refund["refund"]["amount"] == sku["price"]
        assert await watch.next_status() == "CANCELLED"

    money = await server.gql(day["SandboxMoney"], {"orderId": order_id}, staff.last_line)
    assert money["order"] == {
        "status": "CANCELLED",
        "paidAmount": sku["price"],
        "refundedAmount": sku["price"],
    }
    assert money["orderRefunds"] == [{"status": "SUCCEEDED", "amount": sku["price"]}]
    (payment,) = money["orderPayments"]
    assert payment["sandbox"] is True and payment["status"] == "SUCCEEDED"
    assert payment["transactionId"].startswith("SANDBOX")
    # Paying again is refused by the production rules, not by the sandbox.
    (again_paid,) = (await server.gql(day["SandboxPay"], {"orderId": order_id}, token)).values()
    assert [e["code"] for e in again_paid["errors"]] == ["ORDER_ALREADY_PAID"]


# --- Campaigns in the sandbox: a group buy and a presale completed through the API alone --------------------

CAMPAIGN_LOGIN = (
    """mutation($code: String!) { loginWithWechat(code: $code) { accessToken errors { code } } }"""
)
CAMPAIGN_SKU = (
    """{ products(first: 1, filter: { inStock: true }) { edges { node { skus { id price stock } } } } }"""
)
CAMPAIGN_PLACE = """mutation($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) {
  order { id status payable } errors { field message code } } }"""
CAMPAIGN_PAY = """mutation($orderId: ID!) { sandboxPay(orderId: $orderId) {
  order { status paidAmount } errors { field message code } } }"""
GROUP_RULE = """mutation($input: GroupBuyRuleInput!) { groupBuyRuleCreate(input: $input) {
  rule { id } errors { field message code } } }"""
GROUP = """query($id: ID!) { groupBuy(id: $id) { status seatsLeft members { leader } } }"""
OPEN_GROUPS = """query($productId: ID) { groupBuyRules(productId: $productId, first: 5) {
  edges { node { id openGroups { id } } } } }"""
PRESALE = """mutation($input: PresaleInput!) { presaleCreate(input: $input) {
  presale { id } errors { field message code } } }"""
PRESALE_ORDER = """query($orderId: ID!) { presaleOrder(orderId: $orderId) { stage deposit balance } }"""


async def _campaign_staff(data_dir: Path, name: str) -> str:
    made = await run_cli(["create-staff", name], child_env({"DATA_DIR": str(data_dir)}), cwd=data_dir)
    return made.last_line


async def _campaign_login(server: ServerProcess, code: str) -> str:
    return str((await server.gql(CAMPAIGN_LOGIN, {"code": code}))["loginWithWechat"]["accessToken"])


async def _campaign_ok(
    server: ServerProcess, query: str, variables: dict[str, Any], token: str | None
) -> Any:
    (payload,) = (await server.gql(query, variables, token)).values()
    assert not payload.get("errors"), payload
    return payload


def _campaign_item(sku_id: str, kind: str, campaign_id: str) -> dict[str, Any]:
    return {
        "delivery": "PICKUP",
        "items": [{"skuId": sku_id, "quantity": 1, "campaign": {"kind": kind, "id": campaign_id}}],
    }


async def _campaign_sku(server: ServerProcess) -> dict[str, Any]:
    product = (await server.gql(CAMPAIGN_SKU))["products"]["edges"][0]["node"]
    return dict(product["skus"][0])


@pytest.mark.skipif(BACKEND == "real", reason="the sandbox exists only on the embedded default")
async def test_two_friends_complete_a_group_buy_in_the_sandbox(
    sandbox_server: ServerProcess, sandbox_dir: Path
) -> None:
    server, data_dir = sandbox_server, sandbox_dir
    staff = await _campaign_staff(data_dir, "groupbuy-staff")
    sku = await _campaign_sku(server)
    at = datetime.now().astimezone()
    rule = await _campaign_ok(
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
    alice = await _campaign_login(server, "groupbuy-alice")
    placed = await _campaign_ok(
        server,
        CAMPAIGN_PLACE,
        {"input": _campaign_item(sku["id"], "GROUP_BUY", rule_id), "key": "gb-1"},
        alice,
    )
    paid = await _campaign_ok(server, CAMPAIGN_PAY, {"orderId": placed["order"]["id"]}, alice)
    assert paid["order"]["status"] == "PAID"

    # Bob finds the open group (the share link) and joins it.
    bob = await _campaign_login(server, "groupbuy-bob")
    rules = (await server.gql(OPEN_GROUPS, {"productId": None}, bob))["groupBuyRules"]["edges"]
    [group_id] = [g["id"] for e in rules if e["node"]["id"] == rule_id for g in e["node"]["openGroups"]]
    shown = (await server.gql(GROUP, {"id": group_id}, bob))["groupBuy"]
    assert (shown["status"], shown["seatsLeft"]) == ("OPEN", 1)
    joined = await _campaign_ok(
        server,
        CAMPAIGN_PLACE,
        {"input": _campaign_item(sku["id"], "GROUP_BUY", group_id), "key": "gb-2"},
        bob,
    )
    await _campaign_ok(server, CAMPAIGN_PAY, {"orderId": joined["order"]["id"]}, bob)
    shown = (await server.gql(GROUP, {"id": group_id}, bob))["groupBuy"]
    assert (shown["status"], shown["seatsLeft"], len(shown["members"])) == ("SUCCEEDED", 0, 2)


@pytest.mark.skipif(BACKEND == "real", reason="the sandbox exists only on the embedded default")
async def test_a_shopper_pays_a_presale_deposit_then_its_balance_in_the_sandbox(
    sandbox_server: ServerProcess, sandbox_dir: Path
) -> None:
    server, data_dir = sandbox_server, sandbox_dir
    staff = await _campaign_staff(data_dir, "presale-staff")
    sku = await _campaign_sku(server)
    at = datetime.now().astimezone()
    # The deposit window closes, and the balance window opens, a few seconds from now.
    opens = at + timedelta(seconds=8)
    made = await _campaign_ok(
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
    carol = await _campaign_login(server, "presale-carol")
    placed = await _campaign_ok(
        server,
        CAMPAIGN_PLACE,
        {"input": _campaign_item(sku["id"], "PRESALE", made["presale"]["id"]), "key": "ps-1"},
        carol,
    )
    order_id = placed["order"]["id"]
    assert placed["order"]["payable"] == 15000
    deposit = await _campaign_ok(server, CAMPAIGN_PAY, {"orderId": order_id}, carol)
    assert (deposit["order"]["status"], deposit["order"]["paidAmount"]) == ("PENDING_PAYMENT", 5000)
    stage = (await server.gql(PRESALE_ORDER, {"orderId": order_id}, carol))["presaleOrder"]
    assert stage == {"stage": "DEPOSIT_PAID", "deposit": 5000, "balance": 10000}

    early = (await server.gql(CAMPAIGN_PAY, {"orderId": order_id}, carol))["sandboxPay"]
    if early["errors"]:
        assert [e["code"] for e in early["errors"]] == ["ORDER_NOT_PAYABLE"]
        await asyncio.sleep(max(0.0, opens.timestamp() - time.time()) + 0.5)
        balance = await _campaign_ok(server, CAMPAIGN_PAY, {"orderId": order_id}, carol)
    else:
        balance = early  # the machine was slow enough for the window to have opened already
    assert (balance["order"]["status"], balance["order"]["paidAmount"]) == ("PAID", 15000)
    stage = (await server.gql(PRESALE_ORDER, {"orderId": order_id}, carol))["presaleOrder"]
    assert stage["stage"] == "BALANCE_PAID"

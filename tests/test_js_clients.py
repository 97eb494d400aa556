"""The clients shoppers' pages and developers' tools really use, unmodified, against the server.

The npm `graphql-ws` client (graphql-transport-ws) and Apollo's `subscriptions-transport-ws` (legacy graphql-ws)
over WebSocket; graphql-sse, Apollo Client and GraphiQL's fetcher over plain HTTP streams; graphql-http's
GraphQL-over-HTTP audit; and Debian's chromium running the served graphql-ws build and GraphiQL with no
internet. Python tests cannot stand in for these: Python's `websockets` accepts binary frames, for one, where
the reference client fails.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from infra.runtime import current_runtime
from infra.settings import Settings
from infra.static_assets import vendor_asset
from models import ActorKind, Member, OrderStatus, Product, ProductStatus, Sku, StaffRole
from schema.node import encode_id
from services.access.staff import create_staff
from services.catalog.events import stock_channel
from services.members.tokens import issue_tokens, revoke_session
from services.orders import states as order_states
from services.orders.states import order_channel
from tests.js_clients import JS_DIR, client_options, live_server, node, wait_for
from tests.test_orders import place

STOCK = "subscription($id: ID!) { productStockChanged(productId: $id) { productId skuId stock } }"
ORDER = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status order { status } } }"
SKU_UPDATE = """
mutation($id: ID!, $input: SkuUpdateInput!) { skuUpdate(id: $id, input: $input) { sku { stock } errors { code } } }"""

WEBSOCKET_CLIENTS = ("graphql-ws", "subscriptions-transport-ws")
HTTP_STREAM_CLIENTS = ("graphql-sse", "apollo", "graphiql")


@pytest.fixture
async def server(app: object, seeded: None) -> AsyncIterator[str]:
    async with live_server(app) as base:
        yield base


@pytest.fixture
async def operator() -> str:
    _, token = await create_staff(f"js-operator-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    return token


@pytest.fixture
async def sku(server: str, operator: str) -> AsyncIterator[Sku]:
    """A seeded SKU whose stock the test changes through the API; put back afterwards (the seed's own tests
    read these rows), its timestamps included."""
    chosen = await Sku.filter(product__status=ProductStatus.ON_SALE).order_by("-id").first()
    assert chosen is not None
    sku_row = await Sku.filter(id=chosen.id).values("stock", "updated_at")
    product_row = await Product.filter(id=chosen.product_id).values("total_stock", "updated_at")  # type: ignore[attr-defined]
    yield chosen
    await change_stock(server, operator, chosen, sku_row[0]["stock"])
    await Sku.filter(id=chosen.id).update(**sku_row[0])
    await Product.filter(id=chosen.product_id).update(**product_row[0])  # type: ignore[attr-defined]


async def change_stock(base: str, token: str, sku: Sku, stock: int) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{base}/graphql",
            json={
                "query": SKU_UPDATE,
                "variables": {"id": encode_id("Sku", sku.id), "input": {"stock": stock}},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.json()["data"]["skuUpdate"] == {"sku": {"stock": stock}, "errors": []}, response.text


def endpoint(base: str, client: str) -> str:
    url = f"{base}/graphql"
    return url.replace("http", "ws", 1) if client in WEBSOCKET_CLIENTS else url


def event_data(payload: Any) -> dict[str, Any]:
    # GraphiQL's multipart fetcher yields each chunk's parts as a list.
    if isinstance(payload, list):
        (payload,) = payload
    assert "errors" not in payload, payload
    # Apollo Client adds __typename to every selection.
    return {field: _untyped(value) for field, value in payload["data"].items()}


def _untyped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untyped(v) for k, v in value.items() if k != "__typename"}
    return value


async def listening(channel: str, before: int) -> None:
    bus = current_runtime().bus
    await wait_for(lambda: bus.listeners(channel) > before, what=f"a subscriber on {channel}")


@pytest.mark.parametrize("client", WEBSOCKET_CLIENTS + HTTP_STREAM_CLIENTS)
async def test_each_client_sees_a_stock_change_made_through_the_api(
    js_deps: object, server: str, operator: str, sku: Sku, client: str
) -> None:
    channel = stock_channel(sku.product_id)  # type: ignore[attr-defined]
    before = current_runtime().bus.listeners(channel)
    options = client_options(
        url=endpoint(server, client),
        query=STOCK,
        variables={"id": encode_id("Product", sku.product_id)},  # type: ignore[attr-defined]
    )
    async with node("clients.mjs", client, options) as js:
        await listening(channel, before)
        await change_stock(server, operator, sku, sku.stock + 7)
        event = event_data((await js.until("next"))["payload"])
    assert event["productStockChanged"] == {
        "productId": encode_id("Product", sku.product_id),  # type: ignore[attr-defined]
        "skuId": encode_id("Sku", sku.id),
        "stock": sku.stock + 7,
    }


async def new_member() -> tuple[Member, str]:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    return member, (await issue_tokens(member)).access_token


@pytest.mark.parametrize("client", [*WEBSOCKET_CLIENTS, "graphql-sse", "apollo"])
async def test_a_shopper_follows_her_order_with_her_token(js_deps: object, server: str, client: str) -> None:
    # WebSocket clients send the token in connection_init, HTTP clients in the Authorization header.
    member, token = await new_member()
    order = await place(member)
    channel = order_channel(order.id)
    before = current_runtime().bus.listeners(channel)
    options = client_options(
        url=endpoint(server, client), query=ORDER, variables={"id": encode_id("Order", order.id)}, token=token
    )
    async with node("clients.mjs", client, options) as js:
        await listening(channel, before)
        await order_states.transition(order.id, OrderStatus.PAID, actor=ActorKind.WECHAT)
        event = event_data((await js.until("next"))["payload"])
    assert event["orderStatusChanged"]["status"] == "PAID"
    assert event["orderStatusChanged"]["order"] == {"status": "PAID"}


async def test_over_http_a_stranger_sees_no_order_and_a_revoked_session_stops(
    js_deps: object, server: str
) -> None:
    member, token = await new_member()
    order = await place(member)
    variables = {"id": encode_id("Order", order.id)}
    _, stranger = await new_member()
    async with node(
        "clients.mjs",
        "graphql-sse",
        client_options(url=endpoint(server, "graphql-sse"), query=ORDER, variables=variables, token=stranger),
    ) as js:
        refused = await js.until("next")
    assert refused["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    channel = order_channel(order.id)
    before = current_runtime().bus.listeners(channel)
    async with node(
        "clients.mjs",
        "graphql-sse",
        client_options(url=endpoint(server, "graphql-sse"), query=ORDER, variables=variables, token=token),
    ) as js:
        await listening(channel, before)
        await revoke_session(int(jwt.decode(token, options={"verify_signature": False})["sid"]))
        await order_states.transition(order.id, OrderStatus.PAID, actor=ActorKind.WECHAT)
        ended = (await js.until("next"))["payload"]
    assert ended["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "PAID" not in str(ended)


async def test_graphql_http_audit_passes_without_warnings(
    js_deps: object, server: str, operator: str
) -> None:
    async with node("clients.mjs", "audit", client_options(url=f"{server}/graphql", token=operator)) as js:
        results = (await js.until("audit", within=30))["results"]
    assert len(results) >= 50
    failing = [r for r in results if r["status"] != "ok"]
    assert failing == [], failing


# --- A real browser, no internet --------------------------------------------------------------------------------


async def test_a_browser_page_subscribes_with_the_served_graphql_ws_build(
    chromium: str, server: str, operator: str, sku: Sku
) -> None:
    channel = stock_channel(sku.product_id)  # type: ignore[attr-defined]
    before = current_runtime().bus.listeners(channel)
    options = client_options(
        base=server,
        executablePath=chromium,
        scriptTag=vendor_asset("graphql-ws").script_tag(),
        query=STOCK,
        variables={"id": encode_id("Product", sku.product_id)},  # type: ignore[attr-defined]
    )
    async with node("browser.mjs", "graphql-ws-page", options) as page:
        await page.until("connected", within=20)
        await listening(channel, before)
        await change_stock(server, operator, sku, sku.stock + 3)
        event = await page.until("next")
        done = await page.until("done")
    assert event_data(event["payload"])["productStockChanged"]["stock"] == sku.stock + 3
    assert done["blocked"] == [] and done["consoleErrors"] == [], done


async def test_graphiql_works_offline_with_its_schema_docs(
    chromium: str, settings: Settings, runtime: object, seeded: None
) -> None:
    from main import create_app

    # DEBUG lets anonymous callers introspect, as on a developer's embedded default.
    app = create_app(settings.model_copy(update={"debug": True}), manage_resources=False)
    async with live_server(app) as base:
        async with node(
            "browser.mjs", "graphiql", client_options(base=base, executablePath=chromium)
        ) as page:
            result = await page.until("done", within=25)
    assert result["status"] == 200
    assert result["blocked"] == [], "GraphiQL asked for a host other than ours"
    assert "products" in result["editor"]  # the example query
    assert "products" in result["docs"] and "productStockChanged" not in result["docs"]  # Query's fields
    assert result["consoleErrors"] == [], result["consoleErrors"]


def test_the_served_graphql_ws_build_is_the_one_the_node_tests_run(js_deps: object) -> None:
    asset = vendor_asset("graphql-ws")
    served = (JS_DIR.parent.parent / "static" / asset.path).read_bytes()
    package = asset.package.rsplit("@", 1)[0]
    assert served == (JS_DIR / "node_modules" / package / asset.file).read_bytes()

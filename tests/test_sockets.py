"""WebSockets are bounded and leave nothing behind: per-address and per-member connection limits, a coded
error past the per-connection subscription limit, and every subscription's queue and task gone after a close.

On a real socket in this process (uvicorn in the test's event loop), so the test can count what the server
holds: bus queues, asyncio tasks, the limits' counters, and the connections' contexts (through weak refs).
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

import schema.view
from infra.runtime import Runtime
from infra.settings import Settings
from models import Product, ProductStatus
from schema.node import encode_id
from schema.view import GraphQLView, SocketContext
from tests.in_loop_server import in_loop_server
from tests.test_cart import new_member
from tests.test_members import serving

STOCK = "subscription($id: ID!) { productStockChanged(productId: $id) { skuId stock } }"
ME = "query { me { id } }"


@pytest.fixture
async def bounded(runtime: Runtime, settings: Settings) -> AsyncIterator[tuple[str, GraphQLView]]:
    """The app with small limits (3 sockets per address, 2 per member, 4 subscriptions per socket), served."""
    from main import create_app

    limited = settings.model_copy(
        update={
            "ws_max_connections_per_ip": 3,
            "ws_max_connections_per_member": 2,
            "ws_max_subscriptions_per_connection": 4,
        }
    )
    app: Starlette = create_app(limited, manage_resources=False)
    view = next(route.endpoint for route in app.routes if getattr(route, "path", "") == "/graphql")
    assert isinstance(view, GraphQLView)
    async with serving(app) as url:
        yield url, view


async def open_socket(
    url: str, protocol: str = "graphql-transport-ws", token: str | None = None
) -> ClientConnection:
    ws = await connect(url, subprotocols=[Subprotocol(protocol)])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"accessToken": token} if token else {}}))
    return ws


async def recv(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    while True:
        async with asyncio.timeout(within):
            message = json.loads(await ws.recv())
        if message["type"] not in ("ka", "ping", "pong"):
            return message  # type: ignore[no-any-return]


async def subscribe(ws: ClientConnection, protocol: str, op_id: str, product_gid: str) -> None:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    payload = {"query": STOCK, "variables": {"id": product_gid}}
    await ws.send(json.dumps({"id": op_id, "type": kind, "payload": payload}))


async def a_product_gid() -> str:
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").first()
    assert product is not None
    return encode_id("Product", product.id)


async def settled(predicate: Any, within: float = 5.0) -> bool:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (server-side state, no event to wait for)
            await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_closing_sockets_frees_every_subscriptions_state(
    seeded: None,
    runtime: Runtime,
    bounded: tuple[str, GraphQLView],
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, view = bounded
    gid = await a_product_gid()
    bus = runtime.bus
    contexts: list[weakref.ref[SocketContext]] = []

    class Recorded(SocketContext):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            contexts.append(weakref.ref(self))

    monkeypatch.setattr(schema.view, "SocketContext", Recorded)
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    queues_before = bus.subscriber_count
    sockets = [await open_socket(url, protocol) for _ in range(3)]
    for ws in sockets:
        assert (await recv(ws))["type"] == "connection_ack"
        for n in range(4):
            await subscribe(ws, protocol, str(n), gid)
    await settled(lambda: bus.subscriber_count == queues_before + 12)
    assert view.sockets.open == 3 and len(contexts) == 3
    assert len(asyncio.all_tasks()) >= tasks_before + 12, "a task per subscription"

    for ws in sockets:
        await ws.close()
    await settled(lambda: bus.subscriber_count == queues_before and view.sockets.open == 0)
    await settled(lambda: len(asyncio.all_tasks()) <= tasks_before)
    assert view.sockets.by_address == {} and view.sockets.reclaimer.ended == 12
    gc.collect()
    assert [r() for r in contexts] == [None, None, None], "nothing keeps a closed connection's state alive"


async def test_a_subscription_past_the_per_connection_limit_is_refused_with_a_code(
    seeded: None, bounded: tuple[str, GraphQLView]
) -> None:
    url, _ = bounded
    gid = await a_product_gid()
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        ws = await open_socket(url, protocol)
        try:
            assert (await recv(ws))["type"] == "connection_ack"
            for n in range(5):
                await subscribe(ws, protocol, str(n), gid)
            refused = await recv(ws)
            assert refused["type"] == "error" and refused["id"] == "4", refused
            errors = refused["payload"] if isinstance(refused["payload"], list) else [refused["payload"]]
            assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
            # Completing one makes room again.
            stop = "complete" if protocol == "graphql-transport-ws" else "stop"
            await ws.send(json.dumps({"id": "0", "type": stop}))
            if protocol == "graphql-ws":
                assert (await recv(ws)) == {"type": "complete", "id": "0"}
            await asyncio.sleep(0.1)
            await subscribe(ws, protocol, "5", gid)
            with pytest.raises(TimeoutError):  # accepted: no error comes back
                await recv(ws, within=0.3)
        finally:
            await ws.close()


async def test_connections_per_address_and_per_member_are_bounded(
    seeded: None, bounded: tuple[str, GraphQLView]
) -> None:
    url, view = bounded
    _, token = await new_member()
    held = [await open_socket(url, token=token) for _ in range(2)]
    try:
        for ws in held:
            assert (await recv(ws))["type"] == "connection_ack"
        # A third socket of the same member: refused at connection_init (4403), the address still has room.
        third = await open_socket(url, token=token)
        async with asyncio.timeout(5):
            await third.wait_closed()
        assert third.close_code == 4403
        await settled(lambda: view.sockets.open == 2)
        # Anonymous sockets from the same address: one more fits, the next is refused at the handshake.
        guest = await open_socket(url)
        assert (await recv(guest))["type"] == "connection_ack"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
        assert refused.value.response.status_code == 429
        body = json.loads(refused.value.response.body or b"{}")
        assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        await guest.close()
    finally:
        for ws in held:
            await ws.close()
    await settled(lambda: view.sockets.open == 0 and view.sockets.by_member == {})


async def test_sockets_behind_the_trusted_proxy_count_against_the_forwarded_address(
    seeded: None, runtime: Runtime, settings: Settings
) -> None:
    """A socket reaches the view past the middleware (infra/direct_sockets.py) but still by its real address:
    a trusted proxy's X-Forwarded-For names it, so one crowded address does not lock out the proxy's others.
    Served by a uvicorn that does not rewrite addresses itself: the app's own rewrite is what counts."""
    from main import create_app

    app = create_app(settings.model_copy(update={"ws_max_connections_per_ip": 3}), manage_resources=False)
    view = next(route.endpoint for route in app.routes if getattr(route, "path", "") == "/graphql")
    assert isinstance(view, GraphQLView)
    async with in_loop_server(app, log_level="warning", proxy_headers=False) as port:
        url = f"ws://127.0.0.1:{port}/graphql"

        async def behind_proxy(address: str) -> ClientConnection:
            headers = {"X-Forwarded-For": address}
            return await connect(
                url, subprotocols=[Subprotocol("graphql-transport-ws")], additional_headers=headers
            )

        held = [await behind_proxy("198.51.100.1") for _ in range(3)]
        try:
            with pytest.raises(InvalidStatus) as refused:
                await behind_proxy("198.51.100.1")
            assert refused.value.response.status_code == 429
            held.append(await behind_proxy("198.51.100.2"))
            assert dict(view.sockets.by_address) == {"198.51.100.1": 3, "198.51.100.2": 1}
        finally:
            for ws in held:
                await ws.close()
        await settled(lambda: view.sockets.open == 0)


async def test_healthz_counts_the_bus_subscribers(client: httpx.AsyncClient) -> None:
    body = (await client.get("/healthz")).json()
    assert isinstance(body["checks"]["eventBus"]["subscribers"], int)

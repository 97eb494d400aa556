"""Two real server processes, A and B, on the shared PostgreSQL and Redis: what a staff member writes through B
is what shoppers on A see at once: cached pages and listings are dropped everywhere, and stock changes reach
A's WebSocket subscribers, on both subscription protocols, also after Redis dropped every pub/sub connection.

In-process tests cannot show this: there the writer and the reader share one cache and one event bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State
from websockets.typing import Subprotocol

from infra.bus import EventBus
from infra.clock import now
from infra.response_cache import ResponseCache
from infra.settings import Settings
from models import DEFAULT_SHOP_CODE, Member, Order, Product, ProductStatus, Shop, Sku, StaffRole
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.members.tokens import issue_tokens
from tests.bus_listeners import kill_bus_listeners
from tests.server_process import ServerProcess, child_env, running_server

pytestmark = pytest.mark.realservices

PRODUCT_PAGE = """
query($id: ID!) {
  product(id: $id) {
    id title subtitle price { min max }
    skus { id price originalPrice stock specValues { name value } }
    category { name } tags { name }
  }
}"""
LISTING = """
query($categoryId: ID!) {
  products(first: 20, filter: {categoryId: $categoryId}) { edges { node { id title price { min max } } } }
}"""
SKU_UPDATE = """
mutation($id: ID!, $input: SkuUpdateInput!) {
  skuUpdate(id: $id, input: $input) { sku { id price stock } errors { field message code } }
}"""
PRODUCT_UPDATE = """
mutation($id: ID!, $input: ProductUpdateInput!) {
  productUpdate(id: $id, input: $input) { product { id title } errors { field message code } }
}"""
STOCK_SUBSCRIPTION = """
subscription($id: ID!) { productStockChanged(productId: $id) { productId skuId stock } }"""

# A write on one process must show on every other within 1 s, and an event must arrive within 2 s. But an
# L1 entry also disappears by itself L1_TTL after it was stored, so a lost invalidation could pass a 1 s
# check. The tests read a page (storing a new L1 entry) just before each write and demand the new answer
# within half the L1 lifetime: only a delivered invalidation can do that.
L1_TTL: float = inspect.signature(ResponseCache).parameters["l1_ttl"].default
INVALIDATION_DEADLINE = min(1.0, L1_TTL / 2)
EVENT_DEADLINE = 2.0
# After Redis dropped the pub/sub connections the listeners need a moment to subscribe again; an event
# published in that gap is lost (pub/sub keeps nothing), so the change is repeated until one gets through.
RESUBSCRIBE_DEADLINE = 10.0
# An invalidation published while a listener was away is lost, but L1 entries expire: even then a stale
# page must not outlive L1_TTL (plus slack for the requests themselves).
STALE_BOUND_AFTER_LOSS = L1_TTL + 0.5
POLL = 0.01

# Columns the tests change (directly or through the API, including what the service derives from them):
# restored afterwards, because the rest of the session (e.g. tests/test_seed.py) expects the seeded rows.
PRODUCT_COLUMNS = ("title", "subtitle", "search_text", "min_price", "max_price", "total_stock", "updated_at")
SKU_COLUMNS = ("price", "stock", "original_price", "member_price", "tier_prices", "updated_at")

# Measurements, printed at the end of the module (run pytest with -s to see them).
MEASURED: dict[str, str] = {}


# --- processes, staff and the rows the tests borrow ------------------------------------------------------


@pytest.fixture(scope="module")
async def servers(
    settings: Settings, seeded: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    """A and B: two `python main.py serve` on the session's (already migrated and seeded) database and Redis."""
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("multiproc")),
            # Processes that share members must share the key their tokens are signed with.
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "4",
        }
    )
    async with running_server(env) as a, running_server(env) as b:
        yield a, b
    if MEASURED:
        print("\n" + "\n".join(f"  {name}: {value}" for name, value in MEASURED.items()))


@pytest.fixture(scope="module")
async def staff_token(seeded: None) -> str:
    # Made in the test process; the servers find it in the shared database.
    _, token = await create_staff(f"multiproc-{uuid.uuid4().hex[:8]}", StaffRole.OPERATOR)
    return token


@dataclass
class Borrowed:
    product_id: int
    sku_ids: list[int]

    @property
    def gid(self) -> str:
        return encode_id("Product", self.product_id)

    @property
    def sku_gid(self) -> str:
        return encode_id("Sku", self.sku_ids[0])


@pytest.fixture
async def borrow(seeded: None, redis: Redis) -> AsyncIterator[Callable[[int], Awaitable[Borrowed]]]:
    """Lend a seeded product to the test and put its rows back exactly as they were afterwards.

    The servers write into the seeded shop (there is no per-test shop across processes), so the test restores
    the rows, then invalidates their cache entries the way a write does, for every process still listening.
    """
    saved: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []

    async def lend(product_id: int) -> Borrowed:
        product = await Product.filter(id=product_id).values(*PRODUCT_COLUMNS)
        skus = await Sku.filter(product_id=product_id).order_by("id").values("id", *SKU_COLUMNS)
        assert product and skus, f"product {product_id} with SKUs expected in the seed"
        saved.append((product_id, product[0], skus))
        return Borrowed(product_id, [s["id"] for s in skus])

    yield lend

    for product_id, product, skus in saved:
        await Product.filter(id=product_id).update(**product)
        for sku in skus:
            await Sku.filter(id=sku["id"]).update(**{k: v for k, v in sku.items() if k != "id"})
    if saved:
        cache = ResponseCache(redis, EventBus(redis))  # publishing needs no listener
        await cache.invalidate({f"p:{pid}" for pid, _, _ in saved} | {"listing"})


async def on_sale_product(index: int) -> int:
    """The `index`-th product on sale: the seed is deterministic, so each test gets the same one every run."""
    ids = (
        await Product.filter(status=ProductStatus.ON_SALE)
        .order_by("id")
        .offset(index)
        .limit(1)
        .values_list("id", flat=True)
    )
    assert ids, "the seed has products on sale"
    return int(ids[0])


async def sku_update(server: ServerProcess, token: str, sku_gid: str, **changes: int) -> dict[str, Any]:
    data = await server.gql(SKU_UPDATE, {"id": sku_gid, "input": changes}, token=token)
    payload: dict[str, Any] = data["skuUpdate"]
    assert payload["errors"] == [], payload
    return payload


async def poll_until(
    read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], deadline: float
) -> tuple[float, int, Any]:
    """Read until `done(answer)`; return the seconds it took, the number of reads and the last answer.

    Returns (and lets the caller assert) rather than raising, so a failure can show the stale answer.
    """
    start = time.monotonic()
    reads = 0
    while True:
        answer = await read()
        reads += 1
        elapsed = time.monotonic() - start
        if done(answer) or elapsed >= deadline:
            return elapsed, reads, answer
        await asyncio.sleep(POLL)


def sku_of(page: dict[str, Any], sku_gid: str) -> dict[str, Any]:
    return next(s for s in page["product"]["skus"] if s["id"] == sku_gid)


# --- minimal WebSocket subscription clients --------------------------------------------------------------


@dataclass
class Subscriber:
    """One `productStockChanged` subscription over `graphql-transport-ws` or the legacy `graphql-ws`.

    A reader task stamps each event with its arrival time, so latencies do not include the test's own waits.
    """

    protocol: str
    ws: ClientConnection
    events: asyncio.Queue[tuple[float, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    problems: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def _handshake(self) -> None:
        await self._send({"type": "connection_init", "payload": {}})
        async with asyncio.timeout(5.0):
            while True:
                message = orjson.loads(await self.ws.recv())
                if message["type"] == "connection_ack":
                    return
                if message["type"] != "ka":  # graphql-ws may send a keep-alive right after the ack
                    raise AssertionError(f"{self.protocol}: expected connection_ack, got {message}")

    async def _subscribe(self, product_gid: str) -> None:
        start = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        payload = {"query": STOCK_SUBSCRIPTION, "variables": {"id": product_gid}}
        await self._send({"id": "1", "type": start, "payload": payload})

    async def _read(self) -> None:
        data_type = "next" if self.protocol == "graphql-transport-ws" else "data"
        async for raw in self.ws:
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await self._send({"type": "pong"})
            elif kind == data_type:
                payload = message["payload"]
                if payload.get("errors"):
                    self.problems.append(f"errors: {payload['errors']}")
                else:
                    await self.events.put((time.monotonic(), payload["data"]["productStockChanged"]))
            elif kind not in {"ka", "pong"}:
                self.problems.append(f"unexpected message: {message}")

    async def wait_for(self, sku_gid: str, stock: int, within: float) -> float | None:
        """Arrival time of the event announcing `stock` for the SKU, or None if none came within `within` seconds.

        Other events are skipped: pub/sub channels are not separated by Redis database number, so a
        concurrent test run on the same Redis server may publish for the same (deterministic) product id.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    arrived, event = await self.events.get()
                    if event["skuId"] == sku_gid and event["stock"] == stock:
                        return arrived
        return None

    @property
    def open(self) -> bool:
        return self.ws.state is State.OPEN


@contextlib.asynccontextmanager
async def subscribed(server: ServerProcess, protocol: str, product_gid: str) -> AsyncIterator[Subscriber]:
    async with connect(
        server.ws_url, subprotocols=[Subprotocol(protocol)], open_timeout=5.0, close_timeout=2.0
    ) as ws:
        assert ws.subprotocol == protocol
        subscriber = Subscriber(protocol, ws)
        await subscriber._handshake()
        await subscriber._subscribe(product_gid)
        subscriber.reader = asyncio.create_task(subscriber._read(), name=f"ws-reader-{protocol}")
        try:
            yield subscriber
        finally:
            subscriber.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await subscriber.reader


def stock_values(start: int) -> Iterator[int]:
    """Stock levels no concurrent run would choose: offsets from the seeded value, one per change."""
    value = start
    while True:
        value += 7
        yield value


async def warm_up(
    writer: ServerProcess,
    token: str,
    sku_gid: str,
    subscribers: list[Subscriber],
    stocks: Iterator[int],
    deadline: float = RESUBSCRIBE_DEADLINE,
) -> tuple[int, int, float]:
    """Change the stock until every subscriber has seen the change: (attempts, last stock, seconds).

    There is no message saying a subscription is in place on the server, nor that a listener has subscribed
    to Redis again after losing its connection; an event published before that is lost, so repeat it.
    """
    start = time.monotonic()
    attempts = 0
    while time.monotonic() - start < deadline:
        attempts += 1
        stock = next(stocks)
        await sku_update(writer, token, sku_gid, stock=stock)
        arrivals = await asyncio.gather(*(s.wait_for(sku_gid, stock, 0.5) for s in subscribers))
        if all(a is not None for a in arrivals):
            return attempts, stock, time.monotonic() - start
    problems = [p for s in subscribers for p in s.problems]
    raise AssertionError(
        f"no stock event reached every subscriber within {deadline}s ({attempts} changes); {problems}"
    )


# --- the tests -------------------------------------------------------------------------------------------


async def test_a_write_on_b_invalidates_the_cached_page_and_listing_on_a(
    servers: tuple[ServerProcess, ServerProcess],
    staff_token: str,
    borrow: Callable[[int], Awaitable[Borrowed]],
) -> None:
    a, b = servers
    category = await Product.filter(id=await on_sale_product(0)).values_list("category_id", flat=True)
    category_gid = encode_id("Category", int(category[0]))  # type: ignore[call-overload]
    listing = (await a.gql(LISTING, {"categoryId": category_gid}))["products"]["edges"]
    assert listing, "the seeded category lists products"
    item = await borrow(decode_id(listing[0]["node"]["id"], "Product", "id"))
    sku_gid = item.sku_gid

    async def page_on(server: ServerProcess) -> dict[str, Any]:
        return await server.gql(PRODUCT_PAGE, {"id": item.gid})

    first = await page_on(a)
    assert await page_on(a) == first
    before = sku_of(first, sku_gid)

    # A write behind the cache's back (no invalidation) stays invisible: A answers from its cache, and so
    # does B, which never computed this page itself: the entry is shared through Redis.
    sneaky_subtitle = f"sneaky {uuid.uuid4().hex[:6]}"
    await Product.filter(id=item.product_id).update(subtitle=sneaky_subtitle)
    assert await page_on(a) == first, "A must answer the product page from its cache"
    assert await page_on(b) == first, "B must find A's answer in the shared cache"

    new_price, new_stock = before["price"] + 100, before["stock"] + 13
    written = await sku_update(b, staff_token, sku_gid, price=new_price, stock=new_stock)
    assert written["sku"] == {"id": sku_gid, "price": new_price, "stock": new_stock}

    def fresh(page: dict[str, Any]) -> bool:
        sku = sku_of(page, sku_gid)
        return (sku["price"], sku["stock"], page["product"]["subtitle"]) == (
            new_price,
            new_stock,
            sneaky_subtitle,
        )

    elapsed, reads, page = await poll_until(lambda: page_on(a), fresh, INVALIDATION_DEADLINE)
    MEASURED["page invalidation B->A"] = f"{elapsed * 1000:.1f} ms ({reads} read(s) of A after B answered)"
    assert fresh(page), f"A still serves the page as it was before B's write after {elapsed:.2f}s: {page}"
    prices = [s["price"] for s in page["product"]["skus"]]
    assert page["product"]["price"] == {"min": min(prices), "max": max(prices)}
    assert await page_on(a) == page == await page_on(b), "and it stays fresh, on both"

    # The listing: cached on A, then a title change through B must replace it.
    def title_in(edges: list[dict[str, Any]]) -> str | None:
        return next((e["node"]["title"] for e in edges if e["node"]["id"] == item.gid), None)

    async def listing_on_a() -> list[dict[str, Any]]:
        edges: list[dict[str, Any]] = (await a.gql(LISTING, {"categoryId": category_gid}))["products"][
            "edges"
        ]
        return edges

    cached = await listing_on_a()
    original_title = title_in(cached)
    assert original_title is not None
    await Product.filter(id=item.product_id).update(title=original_title + " (behind the cache)")
    assert await listing_on_a() == cached, "A must answer the listing from its cache"

    new_title = original_title[:100] + " 新款"
    updated = await b.gql(PRODUCT_UPDATE, {"id": item.gid, "input": {"title": new_title}}, token=staff_token)
    assert updated["productUpdate"]["errors"] == []

    elapsed, reads, edges = await poll_until(
        listing_on_a, lambda e: title_in(e) == new_title, INVALIDATION_DEADLINE
    )
    MEASURED["listing invalidation B->A"] = f"{elapsed * 1000:.1f} ms ({reads} read(s))"
    assert title_in(edges) == new_title, f"A still lists {title_in(edges)!r} after {elapsed:.2f}s"


async def test_a_stock_change_on_b_reaches_subscribers_on_a_on_both_protocols(
    servers: tuple[ServerProcess, ServerProcess],
    staff_token: str,
    borrow: Callable[[int], Awaitable[Borrowed]],
) -> None:
    a, b = servers
    item = await borrow(await on_sale_product(5))
    stocks = stock_values((await Sku.get(id=item.sku_ids[0])).stock + 1000)

    async with (
        subscribed(a, "graphql-transport-ws", item.gid) as modern,
        subscribed(a, "graphql-ws", item.gid) as legacy,
    ):
        subscribers = [modern, legacy]
        attempts, _, _ = await warm_up(b, staff_token, item.sku_gid, subscribers, stocks)
        MEASURED["subscriptions ready after"] = f"{attempts} change(s)"

        stock = next(stocks)
        sent = time.monotonic()
        await sku_update(b, staff_token, item.sku_gid, stock=stock)
        answered = time.monotonic()
        arrivals = await asyncio.gather(
            *(s.wait_for(item.sku_gid, stock, EVENT_DEADLINE) for s in subscribers)
        )

        for subscriber, arrived in zip(subscribers, arrivals, strict=True):
            assert arrived is not None, (
                f"{subscriber.protocol}: no event within {EVENT_DEADLINE}s; {subscriber.problems}"
            )
            MEASURED[f"event B->A ({subscriber.protocol})"] = (
                f"{(arrived - sent) * 1000:.1f} ms after sending skuUpdate "
                f"(the mutation itself took {(answered - sent) * 1000:.1f} ms)"
            )
            assert subscriber.problems == []
            assert subscriber.open


async def test_listeners_survive_redis_dropping_every_pubsub_connection(
    servers: tuple[ServerProcess, ServerProcess],
    staff_token: str,
    borrow: Callable[[int], Awaitable[Borrowed]],
    settings: Settings,
) -> None:
    a, b = servers
    item = await borrow(await on_sale_product(9))
    stocks = stock_values((await Sku.get(id=item.sku_ids[0])).stock + 2000)

    async def page_on_a() -> dict[str, Any]:
        return await a.gql(PRODUCT_PAGE, {"id": item.gid})

    async with subscribed(a, "graphql-transport-ws", item.gid) as subscriber:
        await warm_up(b, staff_token, item.sku_gid, [subscriber], stocks)
        cached = await page_on_a()
        assert await page_on_a() == cached

        # What a Redis restart does to the listeners, without restarting the Redis others are using (and
        # without cutting other test runs' listeners on it).
        killed = await kill_bus_listeners(settings.redis_url or "", [a.process.pid, b.process.pid])
        assert killed == 2, f"expected A's and B's listeners among the pub/sub clients, killed {killed}"
        lost = time.monotonic()

        # The page: a price change right after the loss must show on A, even if its invalidation was
        # published while A's listener was away.
        price = sku_of(cached, item.sku_gid)["price"] + 100
        await sku_update(b, staff_token, item.sku_gid, price=price)
        elapsed, reads, page = await poll_until(
            page_on_a, lambda p: sku_of(p, item.sku_gid)["price"] == price, STALE_BOUND_AFTER_LOSS
        )
        MEASURED["page invalidation B->A right after the pub/sub loss"] = (
            f"{elapsed * 1000:.1f} ms ({reads} read(s))"
        )
        assert sku_of(page, item.sku_gid)["price"] == price, (
            f"A serves a stale page {elapsed:.2f}s after the write"
        )

        # The event: the same WebSocket, never reconnected, hears a later change.
        attempts, stock, _ = await warm_up(b, staff_token, item.sku_gid, [subscriber], stocks)
        MEASURED["first event after the pub/sub loss"] = (
            f"{(time.monotonic() - lost) * 1000:.0f} ms after the kill, {attempts} change(s)"
        )
        assert subscriber.open and subscriber.problems == []

        # And the cache keeps up with writes again through the bus, not only through the L1 expiry: wait
        # for A to show the current state (a newly stored L1 entry), then write.
        current = (price, stock)
        _, _, page = await poll_until(
            page_on_a,
            lambda p: (sku_of(p, item.sku_gid)["price"], sku_of(p, item.sku_gid)["stock"]) == current,
            STALE_BOUND_AFTER_LOSS,
        )
        assert (sku_of(page, item.sku_gid)["price"], sku_of(page, item.sku_gid)["stock"]) == current
        final_price = price + 100
        await sku_update(b, staff_token, item.sku_gid, price=final_price)
        elapsed, reads, page = await poll_until(
            page_on_a,
            lambda p: (
                (sku_of(p, item.sku_gid)["price"], sku_of(p, item.sku_gid)["stock"]) == (final_price, stock)
            ),
            INVALIDATION_DEADLINE,
        )
        MEASURED["page invalidation B->A after the listeners resubscribed"] = f"{elapsed * 1000:.1f} ms"
        shown = (sku_of(page, item.sku_gid)["price"], sku_of(page, item.sku_gid)["stock"])
        assert shown == (final_price, stock), f"A shows (price, stock) {shown} {elapsed:.2f}s after the write"
        for _ in range(3):
            assert await page_on_a() == page


ORDER_SUBSCRIPTION = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status } }"


async def test_an_order_change_on_b_reaches_its_owner_subscribed_on_a(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    shop, _ = await Shop.get_or_create(code=DEFAULT_SHOP_CODE, defaults={"name": "链猫优选"})
    member = await Member.create(openid=f"o_{uuid.uuid4().hex}", invite_code=uuid.uuid4().hex[:10].upper())
    order = await Order.create(
        shop=shop,
        member=member,
        number=f"MP{uuid.uuid4().hex[:12]}",
        items_total=5900,
        payable=5900,
        idempotency_key=uuid.uuid4().hex,
        pay_deadline=now() + timedelta(minutes=30),
    )
    order_gid = encode_id("Order", order.id)
    token = (await issue_tokens(member)).access_token

    async with connect(a.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5.0) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {"accessToken": token}}).decode())
        async with asyncio.timeout(5.0):
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": ORDER_SUBSCRIPTION, "variables": {"id": order_gid}}
        await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
        # graphql-transport-ws does not acknowledge a subscribe; give A a moment to join the bus channel.
        await asyncio.sleep(0.5)
        sent = time.monotonic()
        cancel = 'mutation($id: ID!) { orderCancel(id: $id, reason: "不想要了") { order { status } errors { code } } }'
        result = await b.gql(cancel, {"id": order_gid}, token)
        assert (
            result["orderCancel"]["errors"] == [] and result["orderCancel"]["order"]["status"] == "CANCELLED"
        )
        async with asyncio.timeout(3.0):
            while True:
                message = orjson.loads(await ws.recv())
                if message["type"] == "next":
                    break
                assert message["type"] == "ping", message
        MEASURED["order event B -> A"] = f"{(time.monotonic() - sent) * 1000:.0f} ms"
    assert message["payload"]["data"]["orderStatusChanged"] == {"orderId": order_gid, "status": "CANCELLED"}

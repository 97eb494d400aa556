"""Redis is a cache here, never the record: while it is away the shop keeps selling from the database, and
nothing it forgets (a flush, a restart) brings back what the database says is gone.

In-process, on both backends: the runtime is swapped for one over a private Redis stand-in whose connection
can be cut (`FakeServer.connected = False` makes every command raise redis-py's ConnectionError, as a dead
server does). tests/test_faults.py does the same with a real redis-server killed under two server processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import httpx
import jwt
import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError

import infra.redis
import infra.runtime
from infra.query_counter import count_queries
from infra.redis import create_redis
from infra.runtime import Runtime, start_runtime, stop_runtime
from infra.settings import Settings
from models import AuditLog, Order, OrderStatus, StaffRole
from schema.node import encode_id
from services import rate_limit
from services.access.staff import create_staff
from services.errors import DomainError, ErrorCode
from services.members.tokens import issue_tokens, revoke_session, session_key
from services.members.viewer import resolve_viewer
from services.rate_limit import WhenRedisDown
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku

GRAPHQL_RESPONSE = "application/graphql-response+json"
PAGE = "query($id: ID!) { product(id: $id) { id title skus { id price stock } } }"
SKU_UPDATE = """mutation($id: ID!, $input: SkuUpdateInput!) {
  skuUpdate(id: $id, input: $input) { sku { id price } errors { field message code } } }"""
PLACE = """mutation($input: CheckoutInput!, $key: String!) {
  placeOrder(input: $input, idempotencyKey: $key) { order { id status payable } errors { code } } }"""


class Outage:
    """A runtime over a Redis stand-in that can be cut off and brought back."""

    def __init__(self, server: fakeredis.FakeServer, runtime: Runtime) -> None:
        self.server = server
        self.runtime = runtime

    def cut(self) -> None:
        self.server.connected = False

    def restore(self) -> None:
        self.server.connected = True


@pytest.fixture
async def outage(
    runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Outage]:
    # monkeypatch puts the session's runtime and Redis back after this fixture stopped its own.
    monkeypatch.setattr(infra.runtime, "_current", infra.runtime._current)
    monkeypatch.setattr(infra.redis, "_client", infra.redis._client)
    server = fakeredis.FakeServer()
    private = settings.model_copy(update={"redis_url": None})
    own = await start_runtime(private, redis=fakeredis.FakeAsyncRedis(server=server))
    try:
        yield Outage(server, own)
    finally:
        server.connected = True
        await stop_runtime(close_redis=False)


async def test_the_shop_reads_and_sells_while_redis_is_down(
    outage: Outage, client: httpx.AsyncClient
) -> None:
    member, token = await new_member()
    address = await new_address(member)
    sku = await new_sku(price=3900, stock=5)
    product_gid = encode_id("Product", sku.product_id)  # type: ignore[attr-defined]
    _, staff = await create_staff(f"outage-{uuid.uuid4().hex[:8]}", StaffRole.OPERATOR)
    assert (await gql(client, PAGE, {"id": product_gid}))["data"]["product"]["skus"][0]["price"] == 3900

    outage.cut()
    # Catalog reads: answered from the database, twice (nothing cached meanwhile), hot words simply empty.
    for _ in range(2):
        body = await gql(client, PAGE, {"id": product_gid})
        assert "errors" not in body and body["data"]["product"]["skus"][0]["price"] == 3900
    assert (await gql(client, "{ hotSearchWords }"))["data"] == {"hotSearchWords": []}
    # A member's token is checked against the database instead.
    assert (await gql(client, "{ me { id } }", token=token))["data"]["me"]["id"] == encode_id(
        "Member", member.id
    )
    # Checkout.
    order_input = {
        "addressId": encode_id("Address", address),
        "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 2}],
    }
    placed = (await gql(client, PLACE, {"input": order_input, "key": uuid.uuid4().hex}, token))["data"][
        "placeOrder"
    ]
    assert placed["order"]["status"] == "PENDING_PAYMENT" and placed["order"]["payable"] > 0
    assert await Order.filter(member_id=member.id, status=OrderStatus.PENDING_PAYMENT).count() == 1
    # A staff write is saved, answered OK and audited as done, though its cache invalidation could not reach Redis.
    written = await gql(client, SKU_UPDATE, {"id": encode_id("Sku", sku.id), "input": {"price": 4200}}, staff)
    assert written["data"]["skuUpdate"] == {
        "sku": {"id": encode_id("Sku", sku.id), "price": 4200},
        "errors": [],
    }
    audit = await AuditLog.filter(action="skuUpdate").order_by("-id").first()
    assert audit is not None and audit.succeeded
    assert not outage.runtime.cache.usable, "an invalidation Redis did not take keeps the cache bypassed"
    assert (await gql(client, PAGE, {"id": product_gid}))["data"]["product"]["skus"][0]["price"] == 4200

    outage.restore()
    await outage.runtime.cache.retry_pending(force=True)
    assert outage.runtime.cache.usable
    first = await gql(client, PAGE, {"id": product_gid})
    with count_queries() as counter:
        assert (await gql(client, PAGE, {"id": product_gid}))["data"] == first["data"]
    assert counter.count == 0, "the cache is in use again"


async def test_a_write_redis_did_not_hear_of_is_never_served_from_its_old_entry(
    outage: Outage, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=1500, stock=3)
    gid = encode_id("Product", sku.product_id)  # type: ignore[attr-defined]
    _, staff = await create_staff(f"outage-{uuid.uuid4().hex[:8]}", StaffRole.OPERATOR)
    assert (await gql(client, PAGE, {"id": gid}))["data"]["product"]["skus"][0]["price"] == 1500  # cached now

    outage.cut()
    written = await gql(client, SKU_UPDATE, {"id": encode_id("Sku", sku.id), "input": {"price": 1700}}, staff)
    assert written["data"]["skuUpdate"]["errors"] == []
    # Redis comes back with the old entry still in it (it kept its data, or only this process was cut off).
    outage.restore()
    for _ in range(3):
        assert (await gql(client, PAGE, {"id": gid}))["data"]["product"]["skus"][0]["price"] == 1700


async def test_a_revoked_session_stays_revoked_when_redis_forgets_or_is_away(outage: Outage) -> None:
    member, _ = await new_member()
    pair = await issue_tokens(member)
    sid = int(jwt.decode(pair.access_token, options={"verify_signature": False})["sid"])
    bearer = f"Bearer {pair.access_token}"
    assert (await resolve_viewer(bearer)).member is not None
    # Known alive now: the next request asks Redis only, not the database.
    with count_queries() as counter:
        assert (await resolve_viewer(bearer)).member is not None
    assert counter.count == 0

    await revoke_session(sid)
    redis = outage.runtime.redis
    await redis.flushdb()  # what a Redis restart without persistence does
    assert await redis.get(session_key(sid)) is None
    for _ in range(2):
        with pytest.raises(DomainError) as refused:
            await resolve_viewer(bearer)
        assert refused.value.code is ErrorCode.UNAUTHENTICATED
    outage.cut()
    with pytest.raises(DomainError):
        await resolve_viewer(bearer)

    # And a live session works while Redis is away (from the database, every time).
    other, _ = await new_member()
    live = await issue_tokens(other)
    assert (await resolve_viewer(f"Bearer {live.access_token}")).member is not None


async def test_rate_limits_count_locally_or_refuse_while_redis_is_away(outage: Outage) -> None:
    key = f"test:{uuid.uuid4().hex}"
    outage.cut()
    allowed = [await rate_limit.hit(key, 3, 60) for _ in range(5)]
    assert allowed == [True, True, True, False, False], "LOCAL: the same limit, counted in this process"
    assert not await rate_limit.hit(f"{key}:money", 100, 60, WhenRedisDown.CLOSED)
    outage.restore()
    assert await rate_limit.hit(f"{key}:money", 100, 60, WhenRedisDown.CLOSED)


async def test_healthz_reports_each_dependency(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == ("embedded" if settings.embedded_redis else "ok")
    assert body["checks"]["eventBus"]["status"] == "ok"


async def test_a_dead_redis_is_asked_once_per_probe_interval_not_on_every_call() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from infra.redis import create_redis, health_of
    from tests.server_process import free_port

    client = create_redis(Settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", DATA_DIR="/tmp"))
    health = health_of(client)
    assert health is not None and health.up
    try:
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        assert not health.up and "refused" in health.last_error.lower()
        health.last_error = "seen"
        with pytest.raises(RedisConnectionError) as second:
            await client.get("k")
        assert "not waiting for it" in str(second.value)
        assert health.last_error == "seen", "the breaker answered without connecting"
        health._retry_at = 0.0  # the probe interval has passed
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        assert "refused" in health.last_error.lower(), "after the interval, one call probes Redis again"
    finally:
        await client.aclose()


@pytest.mark.realservices
def test_a_socket_closed_under_a_command_on_uvloop_fails_as_redis_connection_error(
    settings: Settings,
) -> None:
    """uvicorn serves on uvloop, whose transport raises RuntimeError ("the handler is closed") when written to
    after a reset from a dying Redis closed it; asyncio raises an OSError there, which redis-py turns into its
    ConnectionError. Every caller that degrades catches REDIS_ERRORS, so the guarded connection must say
    ConnectionError on uvloop too (a RuntimeError escaped the member check as a plain-text 500)."""

    async def scenario() -> None:
        client = create_redis(settings)
        try:
            assert await client.ping()
            connection = await client.connection_pool.get_connection()
            connection._writer.transport.abort()  # what a reset leaves behind: the transport closed under it
            await asyncio.sleep(0.05)
            with pytest.raises(RedisConnectionError):
                await connection.send_packed_command(connection.pack_command("PING"))
            await client.connection_pool.release(connection)
            assert await client.ping(), "the next command connects again"
        finally:
            await client.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_an_unexpected_failure_is_a_coded_answer_never_a_plain_text_500(
    outage: Outage, app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis client that fails in a way nobody catches (not redis-py's own error) during the member check
    before execution: the answer is still GraphQL's coded JSON; SERVICE_UNAVAILABLE when a Redis error caused
    it, INTERNAL_SERVER_ERROR otherwise (the traceback goes to the log)."""
    _, token = await new_member()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]

    async def broken(*_: object, **__: object) -> object:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

    async def broken_by_redis(*_: object, **__: object) -> object:
        try:
            raise RedisConnectionError("Connection closed by server.")
        except RedisConnectionError as exc:
            raise RuntimeError("a wrapper failed") from exc

    expected = {
        broken: {
            "application/json": (200, "INTERNAL_SERVER_ERROR"),
            GRAPHQL_RESPONSE: (500, "INTERNAL_SERVER_ERROR"),
        },
        broken_by_redis: {
            "application/json": (503, "SERVICE_UNAVAILABLE"),
            GRAPHQL_RESPONSE: (503, "SERVICE_UNAVAILABLE"),
        },
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for failure, by_media_type in expected.items():
            monkeypatch.setattr(outage.runtime.redis, "mget", failure)
            for accept, (status, code) in by_media_type.items():
                response = await client.post(
                    "/graphql",
                    json={"query": "{ me { id } }"},
                    headers={"Authorization": f"Bearer {token}", "Accept": accept},
                )
                assert response.status_code == status, response.text
                assert response.headers["content-type"] == accept
                assert response.json()["errors"][0]["extensions"]["code"] == code

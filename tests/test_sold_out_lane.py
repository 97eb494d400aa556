"""A sold-out flash sale's crowd is answered before GraphQL execution (schema/sold_out_lane.py), and the answer is
the full path's, byte for byte: each attempt below is sent once with the lane and once without it (each time by a
member of its own, whose cost bucket is fresh, as the crowd's members' are), and status, headers and body must be
equal. What the lane must leave to the full path (guests, staff, holders, other documents and inputs, a bucket
that refuses) is checked to reach it.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
import pytest
from graphql import coerce_input_value
from strawberry.types.arguments import convert_argument

from infra.query_counter import count_queries
from infra.runtime import current_runtime
from infra.settings import get_settings
from models import StaffRole
from schema import query_guard, sold_out_lane
from schema.checkout import CheckoutInput
from schema.node import encode_id
from schema.root import schema
from schema.sold_out_lane import Answer, Handover, SoldOutLane
from services.marketing.flash_sale import sold_out
from services.members import session_memory
from tests.graphql_client import gql
from tests.test_access import staff_token
from tests.test_cart import new_address, new_member, new_sku
from tests.test_flash_sale import flash_sale, open_slot

pytestmark = pytest.mark.usefixtures("runtime", "seeded")

BENCH = (
    "mutation Flash($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) "
    "{ order { id status payable } payParams { package } errors { field message code } } }"
)
SHUFFLED = """mutation Crowd($k: String!, $i: CheckoutInput!) {
  po: placeOrder(idempotencyKey: $k, input: $i) {
    __typename
    problems: errors { __typename c: code message where: field }
    payParams { package paySign }
    order { id number status lines { title } }
  }
}"""
LITERAL_KEY = """# a literal key
mutation { placeOrder(input: $input, idempotencyKey: "crowd") { errors { code } } }""".replace(
    "mutation {", "mutation($input: CheckoutInput!) {"
)
TWO_OPERATIONS = (
    "query Look { __typename } mutation Buy($input: CheckoutInput!, $key: String!) "
    "{ placeOrder(input: $input, idempotencyKey: $key) { errors { message } } }"
)
_addresses = itertools.count(1)


class LaneWatch:
    """What the lane answered, per request it was asked about; `on = False` sends requests the full way."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.on = True


@pytest.fixture
def lane(monkeypatch: pytest.MonkeyPatch) -> LaneWatch:
    watch = LaneWatch()
    answer = SoldOutLane.answer

    async def watched(self: SoldOutLane, body: bytes, viewer: Any) -> Any:
        made = await answer(self, body, viewer) if watch.on else None
        watch.calls.append(made)
        return made

    monkeypatch.setattr(SoldOutLane, "answer", watched)
    # Steps of a slow machine must not outlive what this process knows (a second each); that bound is tested
    # in tests/test_flash_sale.py and tests/test_session_memory.py.
    monkeypatch.setattr(sold_out, "FRESH_SECONDS", 60.0)
    monkeypatch.setattr(session_memory, "FRESH_SECONDS", 60.0)
    return watch


async def post(
    app: Any, body: bytes, token: str | None = None, **headers: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One POST /graphql through the ASGI interface, from an address of its own (a fresh per-address bucket)."""
    sent: dict[str, Any] = {"status": 0, "headers": [], "body": b""}
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if token:
        raw.append((b"authorization", f"Bearer {token}".encode()))
    n = next(_addresses)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *raw],
        "client": (f"10.77.{n // 250}.{n % 250 + 1}", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the response listens for a disconnect while it sends: none comes
            await asyncio.sleep(3600)
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            sent["headers"] = list(message.get("headers", []))
        else:
            sent["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return sent["status"], sent["headers"], sent["body"]


def body_of(query: str, variables: dict[str, Any], **more: Any) -> bytes:
    return orjson.dumps({"query": query, "variables": variables, **more})


@pytest.fixture
async def sale(client: Any) -> dict[str, Any]:
    """A flash item of two units, both sold to a winner; a SKU on the shelf beside it."""
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=10)
    made = await flash_sale(client, operator, session_id, sku, allotment=2, limit=2)
    item = made["items"][0]["id"]
    _, winner_token = await new_member()
    flash = {"skuId": encode_id("Sku", sku.id), "quantity": 1, "campaign": {"kind": "FLASH_SALE", "id": item}}
    both = {"input": {"delivery": "PICKUP", "items": [{**flash, "quantity": 2}]}, "key": "w"}
    won = await gql(client, BENCH, both, winner_token)
    assert won["data"]["placeOrder"]["order"], won
    await events_heard()  # the sale's last units taken: heard before anyone learns it is sold out
    shelf = await new_sku(price=800, stock=10)
    return {
        "flash": flash,
        "shelf": {"skuId": encode_id("Sku", shelf.id), "quantity": 1},
        "winner": winner_token,
        "operator": operator,
    }


async def events_heard() -> None:
    """Every event published so far has reached this process's handlers (the bus delivers in order)."""
    bus = current_runtime().bus
    async with bus.subscribe("test.lane.marker") as events:
        await bus.publish("test.lane.marker", {})
        async with asyncio.timeout(5):
            await anext(events)


async def both_ways(app: Any, lane: LaneWatch, body: bytes, **headers: str) -> tuple[Any, Any]:
    """The attempt the full way (which also lets the process learn the item is sold out), then with the lane,
    each by a fresh member (their addresses, if asked for, are their own)."""
    answers = []
    for on in (False, True):
        member, token = await new_member()
        sent = body.replace(b"@ADDRESS@", encode_id("Address", await new_address(member)).encode())
        lane.on = on
        answers.append(await post(app, sent, token, **headers))
    lane.on = True
    return answers[0], answers[1]


CASES = {
    "the benchmark's crowd": (
        BENCH,
        lambda s: {"input": {"delivery": "PICKUP", "items": [s["flash"]]}, "key": "k"},
    ),
    "aliases, __typename, shuffled fields": (
        SHUFFLED,
        lambda s: {"i": {"delivery": "EXPRESS", "addressId": "@ADDRESS@", "items": [s["flash"]]}, "k": "k"},
    ),
    "an operation beside it": (
        TWO_OPERATIONS,
        lambda s: {"input": {"delivery": "PICKUP", "items": [s["flash"]]}, "key": "k"},
    ),
    "a literal key": (LITERAL_KEY, lambda s: {"input": {"delivery": "PICKUP", "items": [s["flash"]]}}),
    "every input field given": (
        BENCH,
        lambda s: {
            "input": {
                "addressId": "@ADDRESS@",
                "items": [s["shelf"], {**s["flash"], "quantity": 2}],
                "fromCart": False,
                "delivery": "EXPRESS",
                "pointsToUse": 0,
                "note": "快",
                "couponIds": [],
            },
            "key": "x" * 64,
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_sold_out_attempt_is_answered_early_with_the_full_paths_bytes(
    app: Any, sale: dict[str, Any], lane: LaneWatch, case: str
) -> None:
    query, variables = CASES[case]
    body = body_of(query, variables(sale), **({"operationName": "Buy"} if query is TWO_OPERATIONS else {}))
    full, early = await both_ways(app, lane, body)
    assert isinstance(lane.calls[-1], Answer), "the lane answered"
    assert early == full
    assert early[0] == 200 and (b"Sold out" in early[2] or b"INSUFFICIENT_STOCK" in early[2])


@pytest.mark.parametrize(
    "accept", ["application/graphql-response+json", "application/json, text/plain;q=0.5", "*/*"]
)
async def test_the_early_answer_has_the_media_type_the_client_accepts(
    app: Any, sale: dict[str, Any], lane: LaneWatch, accept: str
) -> None:
    body = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    full, early = await both_ways(app, lane, body, accept=accept)
    assert isinstance(lane.calls[-1], Answer)
    assert early == full


async def test_an_early_answer_reads_nothing_from_the_database(
    app: Any, sale: dict[str, Any], lane: LaneWatch
) -> None:
    _, token = await new_member()
    body = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    await post(app, body, token)  # the session checked once, the item learnt sold out
    with count_queries() as counted:
        status, _, answer = await post(app, body, token)
    assert isinstance(lane.calls[-1], Answer)
    assert (status, counted.count) == (200, 0)
    assert orjson.loads(answer)["data"]["placeOrder"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"


def _left_to_the_full_path(sale: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    flash = sale["flash"]
    crowd = {"input": {"delivery": "PICKUP", "items": [flash]}, "key": "k"}
    return {
        "a holder (a repeated request may have its order)": (BENCH, crowd, {"token": sale["winner"]}),
        "a guest": (BENCH, crowd, {"token": None}),
        "staff": (BENCH, crowd, {"token": sale["operator"]}),
        "an ID sent as a number": (
            BENCH,
            {"input": {"delivery": "PICKUP", "items": [{**flash, "quantity": 1.0}]}, "key": "k"},
            {},
        ),
        "an item that is not a list": (
            BENCH,
            {"input": {"delivery": "PICKUP", "items": flash}, "key": "k"},
            {},
        ),
        "a variable the document does not define": (BENCH, {**crowd, "extra": 1}, {}),
        "request extensions": (BENCH, crowd, {"extensions": {"persistedQuery": {}}}),
        "the cart's lines": (BENCH, {"input": {"delivery": "PICKUP", "fromCart": True}, "key": "k"}, {}),
        "a key too long": (BENCH, {**crowd, "key": "k" * 65}, {}),
        "an undecodable SKU": (
            BENCH,
            {"input": {"delivery": "PICKUP", "items": [{**flash, "skuId": "nope"}]}, "key": "k"},
            {},
        ),
        "too many coupons": (
            BENCH,
            {"input": {"delivery": "PICKUP", "items": [flash], "couponIds": ["x"] * 11}, "key": "k"},
            {},
        ),
        "an unknown input field": (
            BENCH,
            {"input": {"delivery": "PICKUP", "items": [flash], "giftWrap": True}, "key": "k"},
            {},
        ),
        "a fragment": (
            BENCH.replace("{ order {", "{ ...P order {")
            + " fragment P on PlaceOrderPayload { errors { code } }",
            crowd,
            {},
        ),
        "a directive": (BENCH.replace("errors {", "errors @include(if: true) {"), crowd, {}),
    }


async def test_what_the_lane_does_not_decide_reaches_the_full_path(
    app: Any, sale: dict[str, Any], lane: LaneWatch
) -> None:
    cases = _left_to_the_full_path(sale)
    primer = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    for name, (query, variables, more) in cases.items():
        token = more.pop("token", "fresh")
        if token == "fresh":
            token = (await new_member())[1]
        await post(app, primer, (await new_member())[1])  # the item is known sold out in this process
        lane.calls.clear()
        status, _, answer = await post(app, body_of(query, variables, **more), token)
        assert all(made is None for made in lane.calls), f"{name}: answered early"
        assert status in (200, 400), (name, answer)


async def test_a_slip_in_the_lane_leaves_the_request_to_the_full_path(
    app: Any, sale: dict[str, Any], lane: LaneWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slipped(_input: Any) -> Any:
        raise ValueError("a slip")

    body = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    await post(app, body, (await new_member())[1])  # the item is known sold out here
    monkeypatch.setattr(sold_out_lane, "checkout_request", slipped)
    status, _, answer = await post(app, body, (await new_member())[1])
    assert lane.calls[-1] is None
    assert status == 200
    assert orjson.loads(answer)["data"]["placeOrder"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"


async def test_a_body_that_is_not_plain_json_never_asks_the_lane(
    app: Any, sale: dict[str, Any], lane: LaneWatch
) -> None:
    _, token = await new_member()
    body = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    await post(app, body, token, accept="text/event-stream")
    assert lane.calls == []


async def test_a_crowd_member_out_of_points_is_refused_as_before_and_charged_once(
    app: Any, sale: dict[str, Any], lane: LaneWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    if settings.cost_bucket_size == 0:
        pytest.skip("cost buckets are off in this configuration")  # pragma: no cover
    member, token = await new_member()
    body = body_of(BENCH, {"input": {"delivery": "PICKUP", "items": [sale["flash"]]}, "key": "k"})
    await post(app, body, (await new_member())[1])  # the item is known sold out here
    await current_runtime().buckets.spend(
        f"member:{member.id}",
        settings.cost_bucket_size,
        size=settings.cost_bucket_size,
        rate=settings.cost_restore_rate,
    )
    spent: list[str] = []
    spend = query_guard.spend

    async def counted(caller: str, cost: int, settings: Any) -> Any:
        spent.append(caller)
        return await spend(caller, cost, settings)

    monkeypatch.setattr(query_guard, "spend", counted)
    monkeypatch.setattr(sold_out_lane, "spend", counted)
    lane.calls.clear()
    status, headers, answer = await post(app, body, token)
    assert isinstance(lane.calls[-1], Handover)
    assert spent == [f"member:{member.id}"], "the bucket is spent once"
    assert status == 429 and any(name == b"retry-after" for name, _ in headers)
    errors = orjson.loads(answer)["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["RATE_LIMITED"]


@pytest.mark.parametrize(
    "given",
    [
        {"items": [{"skuId": "U2t1OjE=", "quantity": 3, "campaign": {"kind": "FLASH_SALE", "id": "x"}}]},
        {"delivery": "PICKUP", "items": [{"skuId": "a", "quantity": 1, "campaign": None}]},
        {
            "addressId": None,
            "items": None,
            "fromCart": True,
            "delivery": "EXPRESS",
            "pointsToUse": 5,
            "note": "",
        },
        {"couponIds": ["a", "b"], "items": [], "note": "n"},
        {"items": [{"skuId": "s", "quantity": -2147483648, "campaign": {"kind": "GROUP_BUY", "id": "g"}}]},
    ],
)
def test_the_lanes_input_is_the_one_strawberry_builds(given: dict[str, Any]) -> None:
    graphql_type = schema._schema.get_type("CheckoutInput")
    coerced = coerce_input_value(given, graphql_type)  # type: ignore[arg-type]
    expected = convert_argument(
        coerced, CheckoutInput, schema.schema_converter.scalar_registry, schema.config
    )
    lane = SoldOutLane(schema, get_settings())
    assert lane._input(given) == expected

"""A hostile client against the GraphQL edge: fragment bombs and chains, alias floods, documents built to make
validation quadratic, queries that cost too much, callers over their budget, and tricks that try to get one
member's private answer out of the shared response cache.

Each attack is refused with a coded error and one log line (never a traceback or a RecursionError), before
the work it asks for is done; the cache never serves one caller's private answer to another. How fast the
refusals are is measured by `bench/hostile_queries.py`; here a generous timeout only guards against a
regression that would hang the suite (the 2^40 bomb used to run for hours).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import parse

from infra.runtime import Runtime
from infra.settings import Settings
from models import Address, Member, StaffRole
from schema import query_guard
from schema.context import make_context
from schema.node import encode_id
from schema.query_guard import validate_query
from schema.query_shape import ShapeLimits, measure
from schema.root import schema
from services.access.api_keys import create_api_key
from services.access.staff import create_staff
from services.members import invite_codes
from services.members.tokens import issue_tokens
from tests.server_process import ServerProcess, child_env, running_server

HANG_GUARD = 10.0  # seconds; the refusals take milliseconds (bench/hostile_queries.py)
LIMITS_LOG = "lianmall.limits"


def doubling_fragments(levels: int, leaf: str = "__typename") -> str:
    """`query{...F0}`, each fragment spreading the next twice: 2^levels leaves when expanded naively."""
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {chain} fragment F{levels} on Query {{ {leaf} }}"


def fragment_chain(length: int) -> str:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length))
    return f"query {{ ...F0 }} {chain} fragment F{length} on Query {{ __typename }}"


def spread_in_one_place(count: int) -> str:
    spreads = " ".join(f"...F{i}" for i in range(count))
    return f"{{ {spreads} }} " + " ".join(f"fragment F{i} on Query {{ __typename }}" for i in range(count))


def alias_flood(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> Any:
    async with asyncio.timeout(HANG_GUARD):
        return await client.post("/graphql", json={"query": query, "variables": variables or {}}, **kw)


def refusal(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body.get("data") is None and len(body.get("errors", [])) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


def limit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LIMITS_LOG]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()
        assert "RecursionError" not in record.getMessage()


# --- documents that cost more to check than to send ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "document", "reason"),
    [
        ("2^40 doubling fragments", doubling_fragments(40), "spread 41 deep"),
        ("300-fragment chain", fragment_chain(300), "tokens"),
        ("5,000 aliases", alias_flood(5_000), "tokens"),
        ("200 copies of one field", "{" + " products(first: 1) { totalCount }" * 200 + " }", "same fields"),
        ("45 fragments spread in one selection", spread_in_one_place(45), "same fields"),
        ("60 fragments", spread_in_one_place(60), "61 definitions"),
        (
            "fragments spread in one place",
            "{ ...A ...A ...A ...A } fragment A on Query { "
            + " ".join(["products(first: 1) { totalCount }"] * 12)
            + " }",
            "same fields",
        ),
    ],
)
async def test_hostile_documents_are_refused_before_validation(
    client: httpx.AsyncClient,
    database: None,
    caplog: pytest.LogCaptureFixture,
    name: str,
    document: str,
    reason: str,
) -> None:
    validations = validate_query.cache_info()
    with caplog.at_level(logging.INFO):
        response = await post(client, document)
    error = refusal(response)
    assert response.status_code == 200
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}, (name, error)
    assert reason in error["message"], (name, error["message"])
    # graphql-core's validation (quadratic in places) never saw the document.
    after = validate_query.cache_info()
    assert (after.hits, after.misses) == (validations.hits, validations.misses), name
    assert len(limit_lines(caplog)) == 1, [r.getMessage() for r in caplog.records]
    assert_no_traceback(caplog)


async def test_a_1_5_mb_alias_flood_stops_at_the_token_limit(database: None, settings: Settings) -> None:
    # In process: the body-size limit of the HTTP edge (if any) must not be what saves us.
    document = alias_flood(100_000)
    assert len(document) > 1_500_000
    async with asyncio.timeout(HANG_GUARD):
        result = await schema.execute(document, context_value=make_context())
    assert result.errors and len(result.errors) == 1
    assert result.errors[0].extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert "characters" in result.errors[0].message


async def test_a_chain_of_fragments_is_measured_without_recursion() -> None:
    # With every limit out of the way the walk still finishes: 2,500 fragments deep is far past Python's
    # recursion limit, so only an iterative walk gets here.
    permissive = ShapeLimits(
        max_depth=10**6, max_aliases=10**6, max_definitions=10**6, max_selections=10**6, max_overlaps=10**6
    )
    shape = measure(parse(fragment_chain(2_500), max_lexical_tokens=10**6), permissive)
    assert shape.refusal is None and shape.nesting == 2_501 and shape.depth == 1
    # The operation expanded (its spread and the 2,501 fragments' one selection each), plus every fragment's
    # own body once more.
    assert shape.selections == (1 + 2_501) + 2_501
    # The doubling bomb, memoised per fragment, is a number, not a walk: 2^40 leaves are never visited.
    bomb = measure(parse(doubling_fragments(40)), permissive)
    assert bomb.refusal == f"The document expands to more than {10**6} selections"
    cyclic = measure(parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"), permissive)
    assert cyclic.cyclic and "within itself" in (cyclic.refusal or "")


async def test_a_fragment_cycle_is_a_validation_error_not_a_recursion(
    client: httpx.AsyncClient, database: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await post(client, "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert refusal(response)["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert_no_traceback(caplog)


async def test_more_aliases_than_allowed_through_a_fragment_count_where_spread(
    client: httpx.AsyncClient, database: None, settings: Settings
) -> None:
    eight = " ".join(f"a{i}: __typename" for i in range(8))
    once = await post(client, f"{{ ...A }} fragment A on Query {{ {eight} }}")
    assert "errors" not in once.json(), once.json()
    twice = await post(
        client, f"{{ ...A b: __typename ... on Query {{ ...A }} }} fragment A on Query {{ {eight} }}"
    )
    assert refusal(twice)["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"the limit is {settings.max_aliases}" in refusal(twice)["message"]


# --- cost -----------------------------------------------------------------------------------------------------

EXPENSIVE = (
    "{ "
    + " ".join(
        f"p{i}: products(first: 100) {{ edges {{ node {{ id title skus {{ id price specValues {{ name value }} }} "
        "media { url } tags { name } } } }"
        for i in range(15)
    )
    + " }"
)
PAGE = "query Page($n: Int) { products(first: $n) { edges { node { id brand { name } } } } }"


def page_cost(n: int) -> int:
    # products 1, and per item: the edge, its node and the node's brand.
    return 1 + 3 * n


async def test_an_expensive_query_is_refused_by_its_cost(
    client: httpx.AsyncClient, seeded: None, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        error = refusal(await post(client, EXPENSIVE))
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert f"the limit is {settings.max_query_cost}" in error["message"]
    assert len(limit_lines(caplog)) == 1
    # The same shape for a page of 5 runs, and says what it cost.
    small = (
        await post(client, EXPENSIVE.replace("first: 100", "first: 5", 1).split(" p1:")[0] + " }")
    ).json()
    assert "errors" not in small, small
    assert 0 < small["extensions"]["cost"]["requestedQueryCost"] <= settings.max_query_cost


def test_readme_queries_cost_a_tenth_of_the_limit_and_what_the_readme_says(settings: Settings) -> None:
    from tests.test_readme import README, _blocks

    costs = {}
    for block in _blocks():
        name = block.split("(")[0].split("{")[0].split()[-1]
        costs[name] = query_guard.query_cost(
            schema._schema, block, settings.max_query_tokens, None, {}, settings.max_page_size
        )
    assert costs and max(costs.values()) <= settings.max_query_cost // 10, costs
    said = re.search(
        r"product page above costs (\d+), the listing of 20 costs (\d+), `me` (\d+)", README.read_text()
    )
    assert said is not None
    assert [int(n) for n in said.groups()] == [costs["ProductPage"], costs["Listing"], costs["Me"]]


async def test_page_size_variables_set_the_cost(client: httpx.AsyncClient, seeded: None) -> None:
    for n in (1, 7, 40):
        body = (await post(client, PAGE, {"n": n})).json()
        assert "errors" not in body, body
        assert body["extensions"]["cost"]["requestedQueryCost"] == page_cost(n)
    # An argument's default applies when the variable is not given (products: first = 20).
    body = (await post(client, PAGE, {})).json()
    assert body["extensions"]["cost"]["requestedQueryCost"] == page_cost(20)


# --- the caller's bucket --------------------------------------------------------------------------------------


async def new_member() -> Member:
    return await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=invite_codes.new_invite_code())


async def member_token() -> str:
    return (await issue_tokens(await new_member())).access_token


@pytest.fixture
def small_buckets(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Buckets that hold two pages of 100 and refill one point a second: the third page must wait."""
    monkeypatch.setattr(settings, "cost_bucket_size", 2 * page_cost(100))
    monkeypatch.setattr(settings, "cost_restore_rate", 1.0)
    monkeypatch.setattr(settings, "cost_bucket_size_per_ip", 2 * page_cost(100))
    monkeypatch.setattr(settings, "cost_restore_rate_per_ip", 1.0)
    return settings


def unique_page() -> str:
    # New request bytes each time: a cache hit is free, a miss is what the bucket pays for.
    return PAGE.replace("query Page", f"query Page{uuid.uuid4().hex[:12]}")


async def test_a_member_over_budget_waits_and_others_do_not(
    client: httpx.AsyncClient, seeded: None, small_buckets: Settings
) -> None:
    token, other = await member_token(), await member_token()
    auth = {"Authorization": f"Bearer {token}"}
    first_query = unique_page()
    left = []
    for query in (first_query, unique_page()):
        body = (await post(client, query, {"n": 100}, headers=auth)).json()
        assert "errors" not in body, body
        status = body["extensions"]["cost"]["throttleStatus"]
        assert status["maximumAvailable"] == small_buckets.cost_bucket_size and status["restoreRate"] == 1.0
        left.append(status["currentlyAvailable"])
    assert left == [page_cost(100), 0]

    response = await post(client, unique_page(), {"n": 100}, headers=auth)
    assert response.status_code == 429
    error = refusal(response)
    assert error["extensions"]["code"] == "RATE_LIMITED"
    # Empty, refilling one point a second: a page of 100 is possible again in page_cost(100) seconds.
    assert page_cost(100) - 5 <= error["extensions"]["retryAfter"] <= page_cost(100) + 1
    assert int(response.headers["Retry-After"]) == math.ceil(error["extensions"]["retryAfter"])

    # A smaller page fits what refilled meanwhile? No: the bucket is empty; but someone else's is full.
    body = (
        await post(client, unique_page(), {"n": 100}, headers={"Authorization": f"Bearer {other}"})
    ).json()
    assert "errors" not in body, body
    # An answer from the response cache is free, so the throttled member still gets the page they had.
    again = await post(client, first_query, {"n": 100}, headers=auth)
    assert again.status_code == 200 and "throttleStatus" not in again.json()["extensions"]["cost"]


async def test_anonymous_callers_are_throttled_per_address_and_staff_not_at_all(
    app: object, seeded: None, small_buckets: Settings
) -> None:
    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=app, client=(address, 4321))  # type: ignore[arg-type]
    neighbour = httpx.ASGITransport(app=app, client=("203.0.113.9", 4321))  # type: ignore[arg-type]
    _, staff = await create_staff(f"hostile-{uuid.uuid4().hex[:6]}", StaffRole.OPERATOR)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as guest,
        httpx.AsyncClient(transport=neighbour, base_url="http://testserver") as other_guest,
    ):
        for _ in range(2):
            assert (await post(guest, unique_page(), {"n": 100})).status_code == 200
        assert (await post(guest, unique_page(), {"n": 100})).status_code == 429
        assert (await post(other_guest, unique_page(), {"n": 100})).status_code == 200
        # A partner key has its own bucket, of the members' size, wherever it calls from.
        _, key = await create_api_key(f"erp-{uuid.uuid4().hex[:6]}", ["catalog:read"], None)
        response = await post(guest, unique_page(), {"n": 100}, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        status = response.json()["extensions"]["cost"]["throttleStatus"]
        assert status["maximumAvailable"] == small_buckets.cost_bucket_size
        for _ in range(3):
            response = await post(
                guest, unique_page(), {"n": 100}, headers={"Authorization": f"Bearer {staff}"}
            )
            assert response.status_code == 200
            assert response.json()["extensions"]["cost"] == {"requestedQueryCost": page_cost(100)}


async def test_the_bucket_fails_open_when_redis_does_not_answer(
    client: httpx.AsyncClient,
    seeded: None,
    runtime: Runtime,
    small_buckets: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def unreachable(*_args: Any, **_kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(10)  # no answer: the guard's own timeout must end the wait

    monkeypatch.setattr(runtime.buckets, "spend", unreachable)
    monkeypatch.setattr(query_guard._breaker, "paused_until", 0.0)
    token = await member_token()
    with caplog.at_level(logging.INFO):
        for _ in range(4):  # twice the bucket: nothing is refused while Redis is away
            response = await post(
                client, unique_page(), {"n": 100}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            assert response.json()["extensions"]["cost"] == {"requestedQueryCost": page_cost(100)}
    # One timeout, then the bucket is skipped for a while instead of costing every request a timeout.
    assert calls == 1
    warnings = [r.getMessage() for r in limit_lines(caplog)]
    assert len(warnings) == 1 and "unthrottled" in warnings[0]


# --- the response cache keys what it serves -------------------------------------------------------------------

PUBLIC = "products(first: 1) { totalCount }"
PRIVATE = "me { id } myAddresses { phone detail }"


@dataclass(frozen=True)
class Trick:
    name: str
    query: str
    variables: dict[str, Any]
    cacheable: bool
    operation: str | None = None


TRICKS = [
    Trick(
        "fragment named like a root field",
        f"query {{ ...products }} fragment products on Query {{ {PUBLIC} {PRIVATE} }}",
        {},
        False,
    ),
    Trick("inline fragment", f"{{ ... on Query {{ {PUBLIC} {PRIVATE} }} }}", {}, False),
    Trick(
        "aliases named like root fields",
        "{ products: me { id } categories: myAddresses { phone detail } }",
        {},
        False,
    ),
    Trick(
        "public field beside an aliased private one",
        f"{{ {PUBLIC} product: myAddresses {{ phone detail }} }}",
        {},
        False,
    ),
    Trick(
        "fragment inside a fragment",
        f"query {{ ...A }} fragment A on Query {{ ...B {PUBLIC} }} fragment B on Query {{ {PRIVATE} }}",
        {},
        False,
    ),
    Trick(
        "@skip(if: false) from a variable",
        f"query($hide: Boolean!) {{ {PUBLIC} me @skip(if: $hide) {{ id }} myAddresses @skip(if: $hide) {{ phone detail }} }}",
        {"hide": False},
        False,
    ),
    Trick(
        "@include from a variable's default",
        f"query($show: Boolean = true) {{ {PUBLIC} myAddresses @include(if: $show) {{ phone detail }} }}",
        {},
        False,
    ),
    Trick(
        "@include on a fragment spread",
        f"query($x: Boolean!) {{ {PUBLIC} ...Mine @include(if: $x) }} fragment Mine on Query {{ {PRIVATE} }}",
        {"x": True},
        False,
    ),
    Trick(
        "__typename beside private fields",
        "{ __typename me { __typename id } myAddresses { __typename phone detail } }",
        {},
        False,
    ),
    Trick(
        "the private operation of two",
        f"query Pub {{ {PUBLIC} }} query Priv {{ {PRIVATE} }}",
        {},
        False,
        "Priv",
    ),
    # Public after all: these may be cached, and then every caller of the scope gets the same answer.
    Trick(
        "@skip(if: true) leaves only public fields",
        f"query($hide: Boolean!) {{ {PUBLIC} me @skip(if: $hide) {{ id }} myAddresses @skip(if: $hide) {{ phone detail }} }}",
        {"hide": True},
        True,
    ),
    Trick(
        "private names as aliases of __typename",
        f"{{ me: __typename myAddresses: __typename {PUBLIC} }}",
        {},
        True,
    ),
    Trick(
        "the public operation of two", f"query Pub {{ {PUBLIC} }} query Priv {{ {PRIVATE} }}", {}, True, "Pub"
    ),
    Trick(
        "public fields through a fragment",
        f"query {{ ...Listing }} fragment Listing on Query {{ {PUBLIC} }}",
        {},
        True,
    ),
]


@dataclass
class Shopper:
    token: str
    member_id: str
    secret: str  # a string only this member's private answers contain


async def shopper() -> Shopper:
    member = await new_member()
    secret = f"秘密地址-{uuid.uuid4().hex[:10]}"
    await Address.create(
        member=member,
        name="甲",
        phone="13900000000",
        province="上海市",
        city="上海市",
        district="徐汇区",
        detail=secret,
    )
    return Shopper((await issue_tokens(member)).access_token, encode_id("Member", member.id), secret)


async def ask(send: Any, trick: Trick, marker: str, token: str | None) -> dict[str, Any]:
    """Send the trick with a comment that makes its bytes new (no earlier test's entry can answer it)."""
    payload: dict[str, Any] = {"query": f"{trick.query} # {marker}", "variables": trick.variables}
    if trick.operation:
        payload["operationName"] = trick.operation
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with asyncio.timeout(HANG_GUARD):
        response = await send(payload, headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def check_trick(trick: Trick, a: Shopper, c: Shopper, answers: dict[str, dict[str, Any]]) -> None:
    to_a, to_c, to_guest = answers["a"], answers["c"], answers["guest"]
    if trick.cacheable:
        assert "errors" not in to_a and to_c["data"] == to_a["data"] == to_guest["data"], trick.name
        return
    # The trick did reach A's private data (so the test could fail) ...
    assert a.secret in str(to_a), trick.name
    # ... and nobody else got it.
    for other in (to_c, to_guest):
        assert a.secret not in str(other) and a.member_id not in str(other), trick.name
    assert c.secret in str(to_c), trick.name


@pytest.mark.parametrize("trick", TRICKS, ids=[t.name for t in TRICKS])
async def test_the_cache_never_serves_a_members_private_answer_to_another(
    client: httpx.AsyncClient, seeded: None, runtime: Runtime, trick: Trick
) -> None:
    # Two members of the same level share a cache scope; guests may too (no member levels set up here).
    a, c = await shopper(), await shopper()
    marker = uuid.uuid4().hex

    async def send(payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return await client.post("/graphql", json=payload, headers=headers)

    stores = runtime.cache.stats.stores
    answers = {}
    for who, token in (("a", a.token), ("c", c.token), ("guest", None)):
        answers[who] = await ask(send, trick, marker, token)
    check_trick(trick, a, c, answers)
    stored = runtime.cache.stats.stores - stores
    if trick.cacheable:
        assert stored >= 1, trick.name
    else:
        assert stored == 0, trick.name


@pytest.fixture(scope="module")
async def two_servers(
    settings: Settings, seeded: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("hostile")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "3",
            # Exactly MAX_QUERY_COST, refilling a point a second: the shared-bucket test counts on it.
            "COST_BUCKET_SIZE": str(settings.max_query_cost),
            "COST_RESTORE_RATE": "1",
        }
    )
    async with running_server(env) as one, running_server(env) as two:
        yield one, two


@pytest.mark.realservices
async def test_the_shared_cache_never_crosses_members_across_processes(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    # The response cache's second level is Redis: an answer A's request stored through one process must not
    # reach C (or a guest) through the other.
    one, two = two_servers
    a, c = await shopper(), await shopper()
    for trick in TRICKS:
        marker = uuid.uuid4().hex
        answers = {}
        for who, token, server in (("a", a.token, one), ("c", c.token, two), ("guest", None, two)):
            answers[who] = await ask(
                lambda payload, headers, s=server: s.http.post(s.url, json=payload, headers=headers),
                trick,
                marker,
                token,
            )
        check_trick(trick, a, c, answers)


@pytest.mark.realservices
async def test_one_bucket_per_member_across_processes(
    two_servers: tuple[ServerProcess, ServerProcess], settings: Settings
) -> None:
    # Requests of one member spread over two processes at once spend one bucket, atomically: exactly as
    # many pages as the bucket holds go through, whichever process serves them.
    one, two = two_servers
    token = await member_token()
    fits = settings.max_query_cost // page_cost(100)
    attempts = fits + 6

    async def page(i: int) -> int:
        server = (one, two)[i % 2]
        response = await server.http.post(
            server.url,
            json={"query": unique_page(), "variables": {"n": 100}},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.status_code

    statuses = await asyncio.gather(*(page(i) for i in range(attempts)))
    assert sorted(statuses) == [200] * fits + [429] * (attempts - fits), statuses

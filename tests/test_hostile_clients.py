"""A hostile client against the response cache: tricks that try to get one member's private answer out of the
cache that all members of a level (and guests) share. The cache must never serve it to anyone else.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from infra.runtime import Runtime
from infra.settings import Settings
from models import Address, Member
from schema.node import encode_id
from services.members import invite_codes
from services.members.tokens import issue_tokens
from tests.server_process import ServerProcess, child_env, running_server

HANG_GUARD = 10.0  # seconds


async def new_member() -> Member:
    return await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=invite_codes.new_invite_code())


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

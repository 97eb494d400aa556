"""Coupon limits under a real rush: two server processes on the shared PostgreSQL and Redis, 500 claims at once
for a coupon with 100 left. Exactly 100 succeed and no member holds more than the per-member limit.

The same race in one process runs on both backends in tests/test_coupons.py; this one proves the guard is the
database, not anything a process keeps to itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.settings import Settings
from models import Member
from schema.node import encode_id
from services.members.tokens import issue_tokens
from tests.server_process import ServerProcess, child_env, running_server
from tests.test_coupons import CLAIM, assert_claims_consistent, new_coupon

pytestmark = pytest.mark.realservices

MEASURED: dict[str, str] = {}


@pytest.fixture(scope="module")
async def servers(
    settings: Settings, database: None, redis: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("coupon-races")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "4",
        }
    )
    async with running_server(env) as a, running_server(env) as b:
        yield a, b
    if MEASURED:
        print("\n" + "\n".join(f"  {name}: {value}" for name, value in MEASURED.items()))


async def test_500_claims_across_two_processes_give_exactly_100(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    coupon = await new_coupon(name="双进程抢券", total_quantity=100, per_member_limit=2)
    members = [
        await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
        for _ in range(125)
    ]
    tokens = [(await issue_tokens(m)).access_token for m in members]
    gid = encode_id("Coupon", coupon.id)

    async def claim(n: int) -> str:
        server = (a, b)[n % 2]
        data = await server.gql(CLAIM, {"id": gid}, tokens[n % len(tokens)])
        payload: dict[str, Any] = data["couponClaim"]
        return payload["errors"][0]["code"] if payload["errors"] else "OK"

    started = time.monotonic()
    outcomes = await asyncio.gather(*(claim(n) for n in range(500)))
    MEASURED["500 claims, 2 processes"] = f"{time.monotonic() - started:.2f} s"
    assert outcomes.count("OK") == 100
    assert set(outcomes) <= {"OK", "SOLD_OUT", "LIMIT_EXCEEDED"}
    await assert_claims_consistent(coupon.id, expected=100, per_member=2)

"""Exit 0 when the real PostgreSQL and Redis used by TEST_BACKEND=real answer, else 1 with a reason."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import redis.asyncio as redis

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def check() -> str | None:
    try:
        conn = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1), timeout=5)
        await conn.close()
    except Exception as exc:
        return f"PostgreSQL at {DATABASE_URL}: {exc}"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL}: {exc}"
    finally:
        await client.aclose()
    return None


if __name__ == "__main__":
    problem = asyncio.run(check())
    if problem:
        print(problem, file=sys.stderr)
    sys.exit(1 if problem else 0)

"""Shared fixtures: one migrated database and one Redis per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from infra.db import close_db, init_db, migrate_db
from infra.redis import create_redis, set_redis
from infra.settings import Settings, get_settings
from tests.conftest import BACKEND


async def _reset_postgres(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[None]:
    if BACKEND == "real":
        await _reset_postgres(settings.resolved_database_url)
    await migrate_db(settings)
    await close_db()
    await init_db(settings)
    yield
    await close_db()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[object]:
    client = create_redis(settings)
    if BACKEND == "real":
        await client.flushdb()
    set_redis(client)
    yield client
    set_redis(None)
    await client.aclose()


@pytest.fixture(scope="session")
async def seeded(database: None, redis: object) -> None:
    from demo.seed import seed_demo_shop

    await seed_demo_shop()


@pytest.fixture(scope="session")
async def runtime(settings: Settings, database: None, redis: object) -> AsyncIterator[object]:
    from infra.runtime import start_runtime, stop_runtime

    rt = await start_runtime(settings, redis=redis)  # type: ignore[arg-type]
    yield rt
    await stop_runtime(close_redis=False)


@pytest.fixture(scope="session")
def app(runtime: object) -> object:
    from main import create_app

    return create_app(manage_resources=False)


@pytest.fixture
async def client(app: object) -> AsyncIterator[object]:
    import httpx

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c

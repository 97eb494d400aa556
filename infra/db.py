"""Tortoise ORM configuration and lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api.migrate import migrate

from infra.settings import Settings, get_settings

# Seconds to wait for a new PostgreSQL connection (asyncpg's own default is 60): an unreachable database must
# answer requests with SERVICE_UNAVAILABLE soon, not hold them for a minute. An explicit `timeout` in the URL wins.
CONNECT_TIMEOUT_SECONDS = 5

# What a database that cannot be reached raises (asyncpg's connection errors, sockets, timeouts, Tortoise's
# wrapper). The edge answers them with SERVICE_UNAVAILABLE (503), never with a plain-text 500.
DATABASE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    DBConnectionError,
)


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DATABASE_DOWN_ERRORS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _with_pool_size(url: str, maxsize: int) -> str:
    """Each worker has its own pool, so the size is per process; an explicit size in the URL wins."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "asyncpg", "postgresql", "psycopg"} or "maxsize" in parts.query:
        return url
    options: dict[str, int] = {"minsize": 1, "maxsize": maxsize}
    if "timeout" not in parts.query:
        options["timeout"] = CONNECT_TIMEOUT_SECONDS
    extra = urlencode(options)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return parts._replace(query=query).geturl()


def tortoise_config(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    url = settings.resolved_database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    return {
        "connections": {"default": _with_pool_size(url, settings.db_pool_max)},
        "apps": {
            "models": {
                "models": ["models"],
                "migrations": "migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "Asia/Shanghai",
    }


# Module-level copy for the `tortoise` CLI: `tortoise -c infra.db.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config()


async def init_db(settings: Settings | None = None) -> None:
    # The global fallback makes the context visible outside the task that ran init: uvicorn runs the lifespan
    # in its own task, and without it every request failed with "No TortoiseContext is currently active".
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def migrate_db(settings: Settings | None = None) -> None:
    """Apply every migration not yet applied (SQLite and PostgreSQL alike)."""
    await migrate(config=tortoise_config(settings))


async def close_db() -> None:
    await Tortoise.close_connections()

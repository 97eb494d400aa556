"""Tortoise ORM configuration and lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError

from infra.exception_chain import caused_by
from infra.schema_setup import bring_up_to_date
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
    return caused_by(exc, DATABASE_DOWN_ERRORS)


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


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that goes back to the pool without asyncpg's reset statement.

    asyncpg resets every released connection with `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`,
    and Tortoise releases the connection after every statement outside a transaction: one more round trip per
    statement, a third of a cold listing's database time. Nothing here leaves session state behind: no
    session-level SET, LISTEN, cursor or advisory lock (the one advisory lock, services/loyalty/referral.py,
    is `pg_advisory_xact_lock`, released with its transaction), and tests/test_pooled_connections.py keeps it
    so. asyncpg still rolls back a transaction left open and drops listeners on release (`Connection._reset`);
    only the statement is skipped.
    """

    def get_reset_query(self) -> str:
        return ""


def _connection(url: str, pool_max: int) -> str | dict[str, Any]:
    """The Tortoise connection config: the URL as it is, except that on asyncpg the pool hands connections
    out in order (infra/postgres_pool.py) and they are `PooledConnection`s (neither a class nor an engine
    module can travel in a URL, so the URL is expanded)."""
    url = _with_pool_size(url, pool_max)
    config = expand_db_url(url)
    if config["engine"] != "tortoise.backends.asyncpg":
        return url
    config["engine"] = "infra.postgres_pool"
    config["credentials"]["connection_class"] = PooledConnection
    return config


def tortoise_config(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    url = settings.resolved_database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    return {
        "connections": {"default": _connection(url, settings.db_pool_max)},
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
    """Bring the database to the models' schema: a new one created at once, an existing one migrated
    (infra/schema_setup.py says why and how)."""
    await bring_up_to_date(tortoise_config(settings))


async def refresh_planner_statistics() -> None:
    """After a bulk load (the demo shop): PostgreSQL's planner statistics of the tables, at once.

    Without them PostgreSQL guesses row counts, and a freshly seeded catalog read with the wrong plans: a cold
    listing's page took 0.9 ms to run instead of 0.3, its SKUs with their spec values 1.2 ms instead of 1.0.
    Autovacuum analyzes a table only once enough of it changed, and only where it is on; a server started
    right after the seed (the benchmark, a demo) would serve on guesses until then. SQLite plans without them.
    """
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        await client.execute_script("ANALYZE")


async def close_db() -> None:
    await Tortoise.close_connections()

"""Tortoise ORM configuration and lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from infra.settings import Settings, get_settings


def _with_pool_size(url: str, maxsize: int) -> str:
    """Each worker has its own pool, so the size is per process; an explicit size in the URL wins."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "asyncpg", "postgresql", "psycopg"} or "maxsize" in parts.query:
        return url
    extra = urlencode({"minsize": 1, "maxsize": maxsize})
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

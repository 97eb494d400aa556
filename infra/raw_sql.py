"""Fixed SQL statements on the current connection (inside a transaction too), without Tortoise's query builder.

Building a statement through Tortoise (querysets, pypika) costs more CPU than PostgreSQL takes to run a small
one, so the hottest write paths run fixed text. Statements are written in PostgreSQL's dialect with `$1`, `$2`,
... placeholders; on SQLite each `$n` becomes `?` with the parameters repeated in the order they appear.
Statements go through the Tortoise client, so the query log (infra.query_counter) sees them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

_PLACEHOLDER = re.compile(r"\$(\d+)")
_sqlite_text: dict[str, tuple[str, tuple[int, ...]]] = {}


def client() -> BaseDBAsyncClient:
    return connections.get("default")


def is_postgres(db: BaseDBAsyncClient | None = None) -> bool:
    return (db or client()).capabilities.dialect == "postgres"


def _for_sqlite(sql: str) -> tuple[str, tuple[int, ...]]:
    hit = _sqlite_text.get(sql)
    if hit is None:
        order = tuple(int(n) - 1 for n in _PLACEHOLDER.findall(sql))
        hit = (_PLACEHOLDER.sub("?", sql), order)
        _sqlite_text[sql] = hit
    return hit


async def fetch(sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
    """The rows `sql` returns (a SELECT, or a write with RETURNING), as sequences indexed by column."""
    db = client()
    if is_postgres(db):
        # Tortoise's execute_query runs a statement starting with INSERT/UPDATE without fetching its RETURNING
        # rows, and execute_query_dict merges columns of the same name: asyncpg's records, through the same
        # log and the same translation of errors (IntegrityError, ...).
        return list(await db._translate_exceptions(_fetch_records, sql, params))
    text, order = _for_sqlite(sql)
    _, rows = await db.execute_query(text, [params[i] for i in order])
    return list(rows)


async def _fetch_records(db: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    async with db.acquire_connection() as connection:
        db.log.debug("%s: %s", sql, params)
        return list(await connection.fetch(sql, *params))


async def fetch_by_ids(sql: str, ids: Sequence[int]) -> list[Sequence[Any]]:
    """The rows of `sql`, where `{ids}` is a membership test in `ids`: `= ANY($1)` on PostgreSQL (one
    statement text whatever the number), `IN (?, ...)` on SQLite."""
    db = client()
    if is_postgres(db):
        _, rows = await db.execute_query(sql.format(ids="= ANY($1::int[])"), [list(ids)])
        return list(rows)
    uses = sql.count("{ids}")
    _, rows = await db.execute_query(sql.format(ids=f"IN ({', '.join('?' * len(ids))})"), list(ids) * uses)
    return list(rows)


async def execute(sql: str, params: Sequence[Any] = ()) -> int:
    """Run a write; the number of rows it changed."""
    db = client()
    if is_postgres(db):
        changed, _ = await db.execute_query(sql, list(params))
        return int(changed)
    text, order = _for_sqlite(sql)
    changed, _ = await db.execute_query(text, [params[i] for i in order])
    return int(changed)

"""PostgreSQL connections go back to the pool without asyncpg's reset statement, and nothing we run leaves
session state behind for the next request to inherit (see infra/db.py, PooledConnection)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tortoise import Tortoise

from infra.db import PooledConnection, tortoise_config
from tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("infra", "loaders", "models", "resolvers", "schema", "services", "demo", "migrations")

# SQL that outlives its transaction: without asyncpg's reset it would reach the next request on the connection.
SESSION_STATE = [
    re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\("),
    re.compile(r"\bLISTEN\s+[\w\"]"),
    re.compile(r"\bSET\s+(SESSION\s+)?(?!LOCAL\b)[a-z_.]+\s*(=|TO\b)"),
    re.compile(r"\bDECLARE\s+\w+.*\bCURSOR\b.*\bWITH\s+HOLD\b"),
    re.compile(r"\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE\b"),
    re.compile(r"set_config\s*\([^)]*false\s*\)", re.IGNORECASE),
    re.compile(r"\bPREPARE\s+\w+\s+(\(|AS\b)"),
]


def test_no_code_leaves_session_state_on_a_connection() -> None:
    found = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if any(pattern.search(line) for pattern in SESSION_STATE):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, (
        "session-level state would leak to the next request on a pooled connection (the pool does not reset "
        "them, infra/db.py): use the transaction-scoped form (SET LOCAL, pg_advisory_xact_lock)\n"
        + "\n".join(found)
    )


def test_the_patterns_catch_session_state() -> None:
    leaking = [
        "SELECT pg_advisory_lock($1)",
        "LISTEN stock_changes",
        "SET statement_timeout = 5000",
        "SET SESSION search_path TO shop",
        "CREATE TEMP TABLE picks (id int)",
        "SELECT set_config('app.member', '7', false)",
    ]
    scoped = [
        "SELECT pg_advisory_xact_lock($1)",
        "SET LOCAL statement_timeout = 5000",
        "Set a line's quantity",
    ]
    assert all(any(p.search(sql) for p in SESSION_STATE) for sql in leaking)
    assert not any(p.search(sql) for p in SESSION_STATE for sql in scoped)


def test_the_embedded_database_keeps_its_url() -> None:
    if BACKEND == "real":
        pytest.skip("the embedded default's configuration")
    assert isinstance(tortoise_config()["connections"]["default"], str)


@pytest.mark.realservices
async def test_released_connections_skip_the_reset_round_trip(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Tortoise.get_connection("default")
    sent: list[str] = []
    execute = PooledConnection.execute

    async def recording(self: PooledConnection, query: str, *args: object, **kwargs: object) -> str:
        sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(PooledConnection, "execute", recording)
    for _ in range(3):
        await client.execute_query("SELECT 1")
    async with client._pool.acquire() as connection:  # type: ignore[attr-defined]
        assert isinstance(connection._con, PooledConnection)
    assert not [q for q in sent if "RESET ALL" in q or "UNLISTEN" in q]


@pytest.mark.realservices
async def test_a_transaction_left_open_is_rolled_back_on_release(database: None) -> None:
    pool = Tortoise.get_connection("default")._pool  # type: ignore[attr-defined]
    async with pool.acquire() as connection:
        await connection.execute("BEGIN")
        await connection.execute("SET LOCAL statement_timeout = 1234")
        raw = connection._con
        assert raw.is_in_transaction()
    # Back in the pool, as the next request would get it: no transaction, nothing it set.
    assert not raw.is_in_transaction()
    assert await raw.fetchval("SHOW statement_timeout") == "0"

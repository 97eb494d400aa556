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

# A SET that starts a statement (an UPDATE's SET clause follows a table name).
SESSION_SET = re.compile(r"(?:^|[;\"'(])\s*SET\s+(SESSION\s+)?(?!LOCAL\b)[a-z_.]+\s*(=|TO\b)")
# SQL that outlives its transaction: without asyncpg's reset it would reach the next request on the connection.
SESSION_STATE = [
    re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\("),
    re.compile(r"\bLISTEN\s+[\w\"]"),
    SESSION_SET,
    re.compile(r"\bDECLARE\s+\w+.*\bCURSOR\b.*\bWITH\s+HOLD\b"),
    re.compile(r"\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE\b"),
    re.compile(r"set_config\s*\([^)]*false\s*\)", re.IGNORECASE),
    re.compile(r"\bPREPARE\s+\w+\s+(\(|AS\b)"),
]


# An UPDATE's SET clause starts its own line in a multi-line statement: that SET belongs to the UPDATE above.
UPDATE = re.compile(r"\bUPDATE\s")


def session_state_lines(text: str) -> list[tuple[int, str]]:
    """The lines of `text` that run SQL leaving session state behind."""
    found = []
    previous = ""
    for number, line in enumerate(text.splitlines(), 1):
        hits = [pattern for pattern in SESSION_STATE if pattern.search(line)]
        if hits == [SESSION_SET] and UPDATE.search(previous):
            hits = []
        if hits:
            found.append((number, line.strip()))
        if line.strip():
            previous = line
    return found


def test_no_code_leaves_session_state_on_a_connection() -> None:
    found = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in session_state_lines(path.read_text()):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line}")
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
        "UPDATE skus s SET stock = s.stock - l.take FROM skus_locked l",
        'await connection.execute("UPDATE skus SET stock = stock - $1 WHERE id = $2", n, sku)',
        "UPDATE products p\n  SET total_stock = p.total_stock - 1",
    ]
    assert all(session_state_lines(sql) for sql in leaking)
    assert all(session_state_lines(f'await connection.execute("{sql}")') for sql in leaking)
    assert not any(session_state_lines(sql) for sql in scoped)


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

"""Bringing a database to the models' schema: a new database at once, an existing one by its migrations.

Tortoise applies a migration operation by operation and clones its whole model state before each one, so a
fresh database costs time that grows with (operations x models): ~10 s of CPU for our chain, paid by every
new embedded shop and every test server. A database with none of our tables is therefore created straight
from the models and every migration recorded as applied; tests/test_schema_setup.py proves that this gives
the same tables, columns, keys and indexes as applying the chain, on SQLite and PostgreSQL.

SQLite cannot alter a column, so Tortoise rebuilds the table for an AlterField and leaves out its
`unique_together` and `Meta.indexes`. After migrating, every such index a model declares and the database
lacks is created again (`_restore_sqlite_indexes`), so an upgraded embedded shop keeps, for instance, the
unique (member, idempotency_key) of the points ledger.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.api.migrate import migrate

_OUR_TABLES = {
    "sqlite": "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
    "AND name != 'tortoise_migrations'",
    "postgres": "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() "
    "AND table_name != 'tortoise_migrations'",
}


async def bring_up_to_date(config: dict[str, Any]) -> None:
    """Create a new database from the models, or apply the migrations an existing one has not had."""
    await Tortoise.init(config=config)
    try:
        connection = get_connection("default")
        dialect = connection.capabilities.dialect
        rows = await connection.execute_query_dict(_OUR_TABLES[dialect])
        fresh = int(rows[0]["n"]) == 0
        if fresh:
            await Tortoise.generate_schemas(safe=False)
    finally:
        await Tortoise.close_connections()
    await migrate(config=config, fake=fresh)
    if dialect == "sqlite" and not fresh:
        await _restore_sqlite_indexes(config)


async def _restore_sqlite_indexes(config: dict[str, Any]) -> None:
    await Tortoise.init(config=config)
    try:
        connection = get_connection("default")
        for model in Tortoise.apps["models"].values():
            meta = model._meta
            table = meta.db_table
            present: set[tuple[bool, tuple[str, ...]]] = set()
            for index in await connection.execute_query_dict(f"PRAGMA index_list('{table}')"):
                columns = await connection.execute_query_dict(f"PRAGMA index_info('{index['name']}')")
                present.add((bool(index["unique"]), tuple(c["name"] for c in columns)))
            for unique, columns in _declared_indexes(model):
                if (unique, columns) in present or (not unique and (True, columns) in present):
                    continue
                name = _index_name("uidx" if unique else "idx", table, columns)
                quoted = ", ".join(f'"{c}"' for c in columns)
                kind = "UNIQUE INDEX" if unique else "INDEX"
                await connection.execute_script(
                    f'CREATE {kind} IF NOT EXISTS "{name}" ON "{table}" ({quoted})'
                )
    finally:
        await Tortoise.close_connections()


def _declared_indexes(model: Any) -> list[tuple[bool, tuple[str, ...]]]:
    meta = model._meta

    def column(name: str) -> str:
        field = meta.fields_map.get(name)
        if field is None:
            return name
        return getattr(field, "source_field", None) or meta.fields_db_projection.get(name, name)

    declared: list[tuple[bool, tuple[str, ...]]] = []
    for together in meta.unique_together or ():
        declared.append((True, tuple(column(n) for n in together)))
    for index in meta.indexes or ():
        names = getattr(index, "fields", None) or index
        if isinstance(names, str):
            names = (names,)
        declared.append((False, tuple(column(n) for n in names)))
    return declared


def _index_name(prefix: str, table: str, columns: tuple[str, ...]) -> str:
    digest = hashlib.sha256(f"{table}:{','.join(columns)}".encode()).hexdigest()[:8]
    return f"{prefix}_{table[:24]}_{digest}"

"""A new database made from the models equals one made by the migration chain, on both backends.

New databases skip the chain (infra/schema_setup.py); this is what makes that safe. It also proves that an
existing SQLite database keeps the indexes and unique constraints Tortoise's table rebuilds leave out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import BACKEND, REAL_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent

# In a child process: Tortoise's initialisation is global and would disturb the session's.
BUILD = """
import asyncio, json, sys
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate
from infra.db import tortoise_config
from infra.schema_setup import bring_up_to_date
from infra.settings import Settings

async def main(how):
    config = tortoise_config(Settings())
    if how == "chain":
        await migrate(config=config)          # every migration, one operation at a time
        await Tortoise.close_connections()
    await bring_up_to_date(config)            # chain: the upgrade path; models: a new database
    await Tortoise.close_connections()

asyncio.run(main(sys.argv[1]))
"""

SQLITE_SHAPE = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
shape = []
for (t,) in db.execute("select name from sqlite_master where type='table' and name not like 'sqlite_%'"):
    if t == "tortoise_migrations":
        continue
    shape += [["column", t, *row[1:]] for row in db.execute(f"pragma table_info('{t}')")]
    shape += [["fk", t, *row[2:]] for row in db.execute(f"pragma foreign_key_list('{t}')")]
    for index in db.execute(f"pragma index_list('{t}')"):
        columns = [c[2] for c in db.execute(f"pragma index_info('{index[1]}')")]
        shape.append(["index", t, index[2], columns])
print(json.dumps(sorted(shape, key=json.dumps)))
"""

POSTGRES_SHAPE = """
select 'column', table_name, column_name, data_type, is_nullable, coalesce(column_default, ''),
       coalesce(character_maximum_length, 0)
  from information_schema.columns where table_schema = 'public' and table_name != 'tortoise_migrations'
union all
select 'index', t.relname, i.indisunique::text, i.indisprimary::text,
       array_to_string(array(select a.attname from unnest(i.indkey) with ordinality k(n, o)
                             join pg_attribute a on a.attrelid = t.oid and a.attnum = k.n order by k.o), ','),
       '', 0
  from pg_index i join pg_class t on t.oid = i.indrelid join pg_namespace s on s.oid = t.relnamespace
 where s.nspname = 'public' and t.relname != 'tortoise_migrations'
union all
select 'constraint', c.conrelid::regclass::text, c.contype::text, pg_get_constraintdef(c.oid), '', '', 0
  from pg_constraint c join pg_namespace s on s.oid = c.connamespace
 where s.nspname = 'public' and c.contype in ('f', 'u', 'c', 'p')
   and c.conrelid::regclass::text != 'tortoise_migrations'
"""


def _build(how: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BUILD, how], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return {**env, **settings}


@pytest.mark.skipif(BACKEND != "embedded", reason="the SQLite pair; PostgreSQL has its own test")
def test_sqlite_from_models_equals_the_migration_chain(tmp_path: Path) -> None:
    shapes = []
    for how in ("chain", "models"):
        folder = tmp_path / how
        folder.mkdir()
        _build(how, _env(DATA_DIR=str(folder)))
        shape = subprocess.run(
            [sys.executable, "-c", SQLITE_SHAPE, str(folder / "lianmall.sqlite3")],
            capture_output=True,
            text=True,
            check=True,
        )
        shapes.append(json.loads(shape.stdout))
    chain, models = shapes
    assert ["index", "points_entries", 1, ["member_id", "idempotency_key"]] in chain, (
        "the points ledger's idempotency is unique after the chain's table rebuilds"
    )
    assert chain == models


@pytest.mark.skipif(BACKEND != "real", reason="needs PostgreSQL")
async def test_postgres_from_models_equals_the_migration_chain(tmp_path: Path) -> None:
    admin = await asyncpg.connect(REAL_DATABASE_URL)
    names = {how: f"lianmall_setup_{how}_{uuid.uuid4().hex[:8]}" for how in ("chain", "models")}
    base = REAL_DATABASE_URL.rsplit("/", 1)[0]
    try:
        shapes = []
        for how, name in names.items():
            await admin.execute(f'CREATE DATABASE "{name}"')
            _build(how, _env(DATA_DIR=str(tmp_path), DATABASE_URL=f"{base}/{name}"))
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                rows = await conn.fetch(POSTGRES_SHAPE)
            finally:
                await conn.close()
            shapes.append(sorted(tuple(row) for row in rows))
        chain, models = shapes
        assert chain == models
    finally:
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

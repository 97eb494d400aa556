"""The operator's CLI as a newcomer uses it: `python main.py migrate | seed | export-schema | create-staff | serve`
on the embedded default (a fresh data folder, no DATABASE_URL or REDIS_URL), each a separate process."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server_process import (
    ServerProcess,
    child_env,
    run_cli,
    running_server,
    start_server,
)

TAG_CREATE = """
mutation($name: String!) { tagCreate(input: {name: $name}) { tag { id name } errors { field message code } } }
"""
SEED_LINE = re.compile(r"^demo shop: (.+)$", re.MULTILINE)


def seed_counts(stdout: str) -> dict[str, int]:
    """`demo shop: shops 1, categories 86, ...` as a dict."""
    line = SEED_LINE.search(stdout)
    assert line, stdout
    return {name: int(count) for name, count in re.findall(r"(\w+) (\d+)", line.group(1))}


def embedded_env(data_dir: Path) -> dict[str, str]:
    return child_env({"DATA_DIR": str(data_dir)})


@pytest.fixture(scope="module")
def served_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-served")


@pytest.fixture(scope="module")
async def embedded_server(served_data_dir: Path) -> AsyncIterator[ServerProcess]:
    """`serve` on a fresh data folder: it migrates and seeds it itself before answering."""
    # cwd is the data folder too, so a developer's `.env` in the project root cannot leak in.
    async with running_server(embedded_env(served_data_dir), cwd=served_data_dir) as server:
        yield server


async def test_migrate_then_seed_twice_is_idempotent(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)

    migrated = await run_cli(["migrate"], env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.describe()
    assert (tmp_path / "lianmall.sqlite3").is_file(), "the embedded database lives in DATA_DIR"

    first = await run_cli(["seed"], env, cwd=tmp_path)
    second = await run_cli(["seed"], env, cwd=tmp_path)

    assert first.returncode == 0, first.describe()
    assert second.returncode == 0, second.describe()
    first_counts, second_counts = seed_counts(first.stdout), seed_counts(second.stdout)
    assert first_counts["products"] > 0 and first_counts["skus"] > 0, first.stdout
    assert second_counts == first_counts, "a second seed must add nothing"


async def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    result = await run_cli(["export-schema"], embedded_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.describe()
    for expected in (
        "type Query",
        "type Mutation",
        "type Subscription",
        "productStockChanged",
        "productCreate",
    ):
        assert expected in result.stdout, expected
    # Printing the schema needs no database: nothing may have been created in the data folder.
    assert not (tmp_path / "lianmall.sqlite3").exists()


async def test_create_staff_token_works_against_the_running_server(
    embedded_server: ServerProcess, served_data_dir: Path
) -> None:
    env = embedded_env(served_data_dir)
    created = await run_cli(["create-staff", "alice"], env, cwd=served_data_dir)
    assert created.returncode == 0, created.describe()
    token = created.last_line
    assert token.startswith("stf_") and " " not in token, created.describe()

    suffix = uuid.uuid4().hex[:8]
    anonymous = await embedded_server.post(TAG_CREATE, {"name": f"anon-{suffix}"})
    assert anonymous.status_code == 200, anonymous.text
    payload = anonymous.json()["data"]["tagCreate"]
    assert payload["tag"] is None and [e["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"], payload

    forged = await embedded_server.post(TAG_CREATE, {"name": f"forged-{suffix}"}, token="stf_" + "x" * 43)
    assert forged.status_code == 401, forged.text
    assert [e["extensions"]["code"] for e in forged.json()["errors"]] == ["UNAUTHENTICATED"]

    staff = await embedded_server.gql(TAG_CREATE, {"name": f"cli-{suffix}"}, token=token)
    assert staff["tagCreate"]["errors"] == []
    assert staff["tagCreate"]["tag"]["name"] == f"cli-{suffix}"

    names = {t["name"] for t in (await embedded_server.gql("{ tags { name } }"))["tags"]}
    assert f"cli-{suffix}" in names
    assert not {f"anon-{suffix}", f"forged-{suffix}"} & names, "refused writes must write nothing"


async def test_second_server_on_the_same_data_folder_is_refused(
    embedded_server: ServerProcess, served_data_dir: Path
) -> None:
    second = await start_server(embedded_env(served_data_dir), cwd=served_data_dir)
    try:
        try:
            async with asyncio.timeout(20.0):
                returncode = await second.process.wait()
        except TimeoutError:
            pytest.fail(f"a second embedded server kept running on a locked data folder\n{second.log()}")
        log = second.log()
    finally:
        await second.stop()

    assert returncode != 0, log
    assert "REDIS_URL" in log and "already running" in log, log
    # The refused process must not have disturbed the one holding the lock.
    assert await embedded_server.gql("{ __typename }") == {"__typename": "Query"}


async def test_serve_with_workers_needs_redis(tmp_path: Path) -> None:
    result = await run_cli(
        ["serve", "--port", "1", "--workers", "2"], embedded_env(tmp_path), cwd=tmp_path, time_limit=60.0
    )

    assert result.returncode == 2, result.describe()
    assert "REDIS_URL" in result.stderr, result.describe()
    # Refused before doing anything: no migration, no seed, no server.
    assert not (tmp_path / "lianmall.sqlite3").exists()

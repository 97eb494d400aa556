"""Migrations stay in step with the models: a model change without its migration fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a child process: the autodetector initialises Tortoise globally, which would disturb the session's.
DETECT = """
import asyncio
from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector
from infra.db import tortoise_config

async def main():
    config = tortoise_config()
    apps = config["apps"]
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, apps).changes()
    for writer in writers:
        print("pending:", writer.app_label, [type(op).__name__ for op in writer.operations])
    raise SystemExit(1 if writers else 0)

asyncio.run(main())
"""


def test_no_model_change_lacks_a_migration(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", DETECT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr

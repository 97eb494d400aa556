"""Count the SQL statements one GraphQL request costs, by executing it in-process against the seeded DB.

Run by run.py as a subprocess, with the same environment (DATA_DIR / DATABASE_URL / REDIS_URL) as the server
it just benchmarked, while no server is running. Reads a JSON list of {"name", "query", "variables"} on
stdin and prints {"name": {"first": n, "steady": n, "exec_ms": t}} on stdout, where exec_ms is the median
in-process execution time measured without the counter (its logging would inflate it). The HTTP response
cache is never involved: this is the cost of a cache miss.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# Project imports only after the path is set; this file is not part of the project's import graph.
from infra.db import close_db, init_db  # noqa: E402
from infra.gc_tuning import tune_for_serving  # noqa: E402
from infra.query_counter import count_queries  # noqa: E402
from infra.runtime import start_runtime, stop_runtime  # noqa: E402
from infra.settings import get_settings  # noqa: E402

# Each query runs this many times; the first may fill per-process caches, the last is the steady state.
RUNS = 3
# Untimed by the counter, to see what one cache miss costs without HTTP around it.
TIMED_RUNS = 21
# Executions before those are timed, as a serving worker has long done them: its pool's connections opened,
# each statement prepared on each of them and past PostgreSQL's first five custom plans (a listing uses up to
# five connections at once), the memoised documents and plans made.
WARM_RUNS = 30


async def _context() -> Any:
    from schema.context import make_context

    context = make_context()
    # Accept either a sync or an async factory: the contract only fixes "call it with no arguments".
    return await context if inspect.isawaitable(context) else context


async def _execute(query: str, variables: dict[str, Any]) -> None:
    from schema.root import schema

    # A fresh context per run, like one HTTP request each: per-request dataloaders start empty.
    context = await _context()
    result = await schema.execute(query, variable_values=variables, context_value=context)
    if result.errors:
        raise RuntimeError(f"query failed in-process: {[str(e) for e in result.errors]}")


async def _count(query: str, variables: dict[str, Any]) -> list[int]:
    counts: list[int] = []
    for _ in range(RUNS):
        with count_queries() as counted:
            await _execute(query, variables)
        counts.append(counted.count)
    return counts


async def _median_ms(query: str, variables: dict[str, Any]) -> float:
    for _ in range(WARM_RUNS):
        await _execute(query, variables)
    timings: list[float] = []
    for _ in range(TIMED_RUNS):
        started = time.perf_counter()
        await _execute(query, variables)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def main() -> None:
    specs: list[dict[str, Any]] = json.load(sys.stdin)
    settings = get_settings()
    await init_db(settings)
    # The same process-wide services as the server's lifespan (Redis via create_redis/set_redis, the bus,
    # the cache), so resolvers that reach for them behave as they do in the server.
    await start_runtime(settings)
    # The garbage collector as the server's lifespan leaves it (infra/gc_tuning.py): what a worker pays.
    tune_for_serving()
    try:
        report = {}
        for spec in specs:
            counts = await _count(spec["query"], spec["variables"])
            exec_ms = await _median_ms(spec["query"], spec["variables"])
            report[spec["name"]] = {"first": counts[0], "steady": counts[-1], "exec_ms": round(exec_ms, 2)}
    finally:
        await stop_runtime()
        await close_db()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())

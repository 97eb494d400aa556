"""The cold path in-process: `python bench/inprocess.py` (see bench/README.md, "Cold path in-process").

Runs the benchmark's queries against the ASGI app itself (no socket, no uvicorn, response cache off) N times
and reports milliseconds per request: one request at a time (the cost of a cache miss) and 32 at once (where
the garbage collector's pauses and the event loop's task churn show up in the p99). A bare Starlette endpoint
(`bench/ceiling.py`, the same app `run.py` measures as its ceiling) is timed the same way, side by side, so
the ratio says what our work costs over the framework's.

PostgreSQL by default (`postgres://postgres@127.0.0.1:5432/test_h8`, Redis db 8, or DATABASE_URL/REDIS_URL
when set); `--seed` migrates and seeds an empty database first. `--profile FILE` writes a cProfile of the
sequential runs of one scenario (`--only`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test_h8"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"

# The queries of bench/run.py, plus the README's browse listing with SKUs and their spec values.
from run import IDS_QUERY, LISTING_QUERY, PRODUCT_QUERY  # noqa: E402

LISTING_SKUS_QUERY = (
    "query ListingSkus($c: ID!) { products(first: 20, filter: {categoryId: $c}, sort: SALES) { "
    "edges { node { id title skus { id price stock specValues { name value } } } } } }"
)
CATEGORY_CHAIN_QUERY = "query Chain($c: ID!) { category(id: $c) { breadcrumbs { id } } }"
CATEGORY_SIZE_QUERY = "query Size($c: ID!) { products(first: 1, filter: {categoryId: $c}) { totalCount } }"

# Milliseconds: exec = schema.execute alone (as sqlcount.py times it; cpu: this process's CPU time per execution,
# what a loaded machine disturbs least); seq = one request at a time through the
# ASGI app, cpu = this process's CPU time per request (what a loaded machine disturbs least); c32 = 32 clients.
COLUMNS = (
    "exec p50",
    "exec cpu",
    "seq cpu",
    "seq p50",
    "seq p99",
    "c32 cpu",
    "c32 ms/req",
    "c32 p50",
    "c32 p99",
)

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(app: ASGIApp, body: bytes) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI interface: what uvicorn would hand the app, minus the socket."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def ask(app: ASGIApp, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    status, raw = await call(app, json.dumps({"query": query, "variables": variables or {}}).encode())
    answer: dict[str, Any] = json.loads(raw)
    if status != 200 or answer.get("errors"):
        raise SystemExit(f"bad answer ({status}): {raw[:1000]!r}")
    return answer


async def discover(app: ASGIApp) -> dict[str, str]:
    """The top seller and the most specific category on its path that fills a page of 20 (as run.py does)."""
    node = (await ask(app, IDS_QUERY))["data"]["products"]["edges"][0]["node"]
    ids = {"product": node["id"], "category": node["category"]["id"]}
    chain = (await ask(app, CATEGORY_CHAIN_QUERY, {"c": ids["category"]}))["data"]["category"]["breadcrumbs"]
    for category in reversed([c["id"] for c in chain]):
        size = (await ask(app, CATEGORY_SIZE_QUERY, {"c": category}))["data"]["products"]["totalCount"]
        if size >= 20:
            ids["category"] = category
            break
    return ids


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def sequential(app: ASGIApp, body: bytes, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        status, _ = await call(app, body)
        timings.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"HTTP {status}")
    return timings


async def executed(request: dict[str, Any], runs: int) -> tuple[list[float], float]:
    """`schema.execute` alone with a fresh context each time, as bench/sqlcount.py times a cache miss: the wall
    times, and the CPU time per execution."""
    from schema.context import make_context
    from schema.root import schema

    timings = []
    cpu = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        result = await schema.execute(
            request["query"], variable_values=request.get("variables"), context_value=make_context()
        )
        timings.append((time.perf_counter() - started) * 1000)
        if result.errors:
            raise SystemExit(f"errors: {result.errors}")
    return timings, (time.process_time() - cpu) * 1000 / runs


async def concurrent(
    app: ASGIApp, body: bytes, runs: int, connections: int, warmup: int
) -> tuple[float, float, list[float]]:
    """`connections` clients, each sending its next request when the last is answered (like wrk -c). The
    first `warmup` requests are not timed, as wrk's discarded warm-up: they open the database pool's and
    Redis's further connections, and their clients all start at the same instant, so they finish in one
    slow wave (before 2026-12-01 that wave was timed: 32 of the 200 requests, the p99 of `{ __typename }`).
    Returns the ms per timed request (wall time over requests), the CPU ms per timed request and the timings."""
    timings: list[float] = []
    left = warmup + runs
    timed_from = 0.0
    cpu_from = 0.0

    async def client() -> None:
        nonlocal left, timed_from, cpu_from
        while left > 0:
            left -= 1
            timed = left < runs
            if timed and not timed_from:
                timed_from, cpu_from = time.perf_counter(), time.process_time()
            started = time.perf_counter()
            await call(app, body)
            if timed:
                timings.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(connections)))
    per_request = (time.perf_counter() - timed_from) * 1000 / runs
    return per_request, (time.process_time() - cpu_from) * 1000 / runs, timings


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="requests per scenario and mode")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seed", action="store_true", help="migrate and seed the database first")
    parser.add_argument("--only", help="one scenario: ceiling, typename, product, listing, listing_skus")
    parser.add_argument("--profile", type=Path, help="cProfile output of the sequential runs")
    parser.add_argument(
        "--untuned", action="store_true", help="leave the garbage collector as CPython sets it"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["RESPONSE_CACHE"] = "0"
    os.environ.setdefault("DEBUG", "0")
    # The per-address cost bucket stays on (its Redis round trip is part of a request) but never refuses.
    os.environ["COST_BUCKET_SIZE_PER_IP"] = os.environ["COST_RESTORE_RATE_PER_IP"] = "1000000000"

    from ceiling import app as ceiling_app

    from infra.db import close_db, init_db
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from main import create_app

    settings = get_settings()
    if args.seed:
        for command in ("migrate", "seed"):
            subprocess.run([sys.executable, "main.py", command], cwd=REPO_ROOT, check=True)  # noqa: ASYNC221
    await init_db(settings)
    await start_runtime(settings)
    app = create_app(settings, manage_resources=False)
    if not args.untuned:
        from infra.gc_tuning import tune_for_serving

        # What the app's lifespan does once start-up is done.
        tune_for_serving()
    try:
        ids = await discover(app)
        scenarios: dict[str, tuple[ASGIApp, dict[str, Any]]] = {
            "ceiling": (ceiling_app, {"query": "{ __typename }"}),
            "typename": (app, {"query": "{ __typename }"}),
            "product": (app, {"query": PRODUCT_QUERY, "variables": {"id": ids["product"]}}),
            "listing": (app, {"query": LISTING_QUERY, "variables": {"c": ids["category"]}}),
            "listing_skus": (app, {"query": LISTING_SKUS_QUERY, "variables": {"c": ids["category"]}}),
        }
        if args.only:
            scenarios = {args.only: scenarios[args.only]}
        report: dict[str, dict[str, float]] = {}
        print(f"{'scenario':14}" + "".join(f"{title:>11}" for title in COLUMNS))
        for name, (target, request) in scenarios.items():
            body = json.dumps(request).encode()
            await sequential(target, body, 20)  # warm: memoised documents, prepared statements, pool
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            cpu = time.process_time()
            seq = await sequential(target, body, args.runs)
            seq_cpu = (time.process_time() - cpu) * 1000 / args.runs
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            per_request, conc_cpu, conc = await concurrent(
                target, body, args.runs, args.connections, warmup=args.connections * 2
            )
            execute, execute_cpu = await executed(request, args.runs) if target is app else ([0.0], 0.0)
            row = {
                "execute_p50_ms": statistics.median(execute),
                "execute_cpu_ms": execute_cpu,
                "seq_cpu_ms": seq_cpu,
                "seq_p50_ms": statistics.median(seq),
                "seq_p99_ms": percentile(seq, 0.99),
                "c32_cpu_ms": conc_cpu,
                "c32_ms_per_request": per_request,
                "c32_p50_ms": statistics.median(conc),
                "c32_p99_ms": percentile(conc, 0.99),
            }
            report[name] = row
            print(f"{name:14}" + "".join(f"{value:>11.2f}" for value in row.values()))
        print(f"gc counts {gc.get_count()}, thresholds {gc.get_threshold()}, frozen {gc.get_freeze_count()}")
        if args.json:
            args.json.write_text(json.dumps({"ids": ids, "report": report}, indent=2))
    finally:
        await stop_runtime()
        await close_db()


if __name__ == "__main__":
    asyncio.run(main())

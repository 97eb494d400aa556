"""The HTTP edge's fixed cost in-process: `python bench/edge_cpu.py` (see bench/README.md, "Edge in-process").

CPU per request (time.process_time) of four requests sent one at a time through the ASGI app itself (no socket,
no uvicorn; PostgreSQL + Redis settings, cost buckets off): `{ __typename }`, `mutation { __typename }`, a
sold-out flash-sale placeOrder (bench/flash_sale.py's mutation, an allotment of 1 already sold) and a member's
`{ me { id } }` (a private query). What every request pays before and after its own work. `--profile PREFIX`
writes a cProfile per request kind.

PostgreSQL `postgres://postgres@127.0.0.1:5432/test_h3` and Redis db 3 unless DATABASE_URL / REDIS_URL are set;
`--seed` drops the database's public schema, migrates and seeds it first. Runs on uvloop, as uvicorn serves
(`--loop asyncio` for the standard loop).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test_h3"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"


async def run(args: argparse.Namespace) -> None:
    from flash_sale import PLACE_ORDER, set_up
    from place_order_cpu import call

    from infra.db import close_db, init_db
    from infra.gc_tuning import tune_for_serving
    from infra.query_counter import count_queries
    from infra.redis import get_redis
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from main import create_app

    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    await get_redis().flushdb()
    app = create_app(settings, manage_resources=False)
    tune_for_serving()
    results: dict[str, tuple[float, int]] = {}
    try:
        setup = await set_up(1, 2)
        (_, winner), (_, loser) = setup["members"]
        order = json.dumps(
            {"query": PLACE_ORDER, "variables": {"input": setup["input"], "key": "k1"}}
        ).encode()
        status, raw = await call(app, order, winner)
        if b'"order":{' not in raw:
            raise SystemExit(f"the winning placeOrder failed: {status} {raw[:400]!r}")
        requests = {
            "query { __typename }": (json.dumps({"query": "{ __typename }"}).encode(), loser),
            "mutation { __typename }": (json.dumps({"query": "mutation { __typename }"}).encode(), loser),
            "sold-out placeOrder": (order, loser),
            "member { me { id } }": (json.dumps({"query": "{ me { id } }"}).encode(), loser),
        }
        for name, (body, token) in requests.items():
            status, raw = await call(app, body, token)
            if status != 200 or (name.startswith("sold") and b"INSUFFICIENT_STOCK" not in raw):
                raise SystemExit(f"{name}: unexpected answer {status} {raw[:400]!r}")
            for _ in range(200):
                await call(app, body, token)
            with count_queries() as counted:
                await call(app, body, token)
            best = float("inf")
            for _ in range(args.rounds):
                started = time.process_time()
                for _ in range(args.runs):
                    await call(app, body, token)
                best = min(best, (time.process_time() - started) / args.runs * 1e6)
            results[name] = (best, counted.count)
            if args.profile:
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                for _ in range(args.runs):
                    await call(app, body, token)
                profiler.disable()
                slug = name.split()[0].replace("-", "_")
                profiler.dump_stats(f"{args.profile}.{slug}.prof")
    finally:
        await stop_runtime()
        await close_db()
    print(f"edge in-process, best of {args.rounds} x {args.runs} requests ({settings.database_url})")
    for name, (micros, statements) in results.items():
        print(f"  {name:26} {micros:7.0f} us CPU/request   SQL {statements}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000, help="requests per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per request (the best is shown)")
    parser.add_argument("--seed", action="store_true", help="reset, migrate and seed the database first")
    parser.add_argument("--profile", help="cProfile output prefix")
    # uvicorn serves on uvloop when it is installed (uvicorn[standard]): measure on the same loop by default.
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    from place_order_cpu import in_process_environment

    in_process_environment(
        "lianmall-edge-cpu-", seed=args.seed, database_url=DEFAULT_DATABASE_URL, redis_url=DEFAULT_REDIS_URL
    )
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()

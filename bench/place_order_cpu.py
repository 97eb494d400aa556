"""placeOrder in-process: `python bench/place_order_cpu.py` (see bench/README.md, "placeOrder in-process").

What one placeOrder costs the worker, free of the noise of a loaded machine: N placeOrder mutations (with
their WeChat Pay prepay, answered by the stand-in running in a child process so its CPU is not counted) sent
one at a time through the ASGI app itself (no socket, no uvicorn), with the same setup as
bench/place_order.py (one product, one SKU, members with tokens and addresses). Reports CPU ms per order
(time.process_time of this process, worker threads included), wall ms per order and the SQL statements of
one order (infra.query_counter). `--profile FILE` writes a cProfile of the timed runs (the event loop thread's CPU);
`--loop uvloop` runs on uvloop, as the served worker does.

PostgreSQL by default (`postgres://postgres@127.0.0.1:5432/test_h2`, Redis db 2, or DATABASE_URL / REDIS_URL
when set); `--seed` drops the database's public schema, migrates and seeds it first.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test_h2"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/2"


def _serve_pay(ready: Any, stop: Any) -> None:
    from tests.wechat_pay_standin import WeChatPayStandIn

    pay = WeChatPayStandIn()
    pay.start()
    ready.send((pay.appid, pay.mch_id, pay.api_key, pay.base_url))
    stop.wait()
    pay.stop()


async def reset_schema(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


def in_process_environment(
    prefix: str, *, seed: bool, database_url: str = DEFAULT_DATABASE_URL, redis_url: str = DEFAULT_REDIS_URL
) -> None:
    """The settings of an in-process bench (PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, a
    fresh DATA_DIR, cost buckets off); with `seed`, the database's public schema dropped, migrated and seeded."""
    os.environ.setdefault("DATABASE_URL", database_url)
    os.environ.setdefault("REDIS_URL", redis_url)
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("DEBUG", "0")
    for name in ("COST_BUCKET_SIZE", "COST_BUCKET_SIZE_PER_IP"):
        os.environ[name] = "0"
    if seed:
        asyncio.run(reset_schema(os.environ["DATABASE_URL"]))
        for command in ("migrate", "seed"):
            subprocess.run([sys.executable, "main.py", command], cwd=REPO_ROOT, check=True)


async def call(app: Any, body: bytes, token: str) -> tuple[int, bytes]:
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
            (b"authorization", f"Bearer {token}".encode()),
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="placeOrders timed")
    parser.add_argument("--members", type=int, default=8, help="members taking turns")
    parser.add_argument("--seed", action="store_true", help="reset, migrate and seed the database first")
    parser.add_argument("--profile", type=Path, help="cProfile output of the timed runs")
    parser.add_argument("--statements", action="store_true", help="print the SQL of one placeOrder")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop (the served worker runs uvloop, uvicorn's choice when it is installed)",
    )
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    from place_order import PLACE_ORDER, _failure, create_shoppers, variables

    from infra.db import close_db, init_db
    from infra.gc_tuning import tune_for_serving
    from infra.query_counter import count_queries
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from main import create_app
    from schema.node import encode_id

    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    app = create_app(settings, manage_resources=False)
    tune_for_serving()
    try:
        shoppers, sku_pk = await create_shoppers(args.members)
        sku_gid = encode_id("Sku", sku_pk)

        async def one(i: int) -> None:
            shopper = shoppers[i % len(shoppers)]
            body = json.dumps({"query": PLACE_ORDER, "variables": variables(shopper, sku_gid)}).encode()
            status, raw = await call(app, body, shopper.token)
            failure = _failure(status, json.loads(raw))
            if failure:
                raise SystemExit(f"placeOrder failed: {failure}: {raw[:500]!r}")

        for i in range(20):  # warm the per-process caches and the pool
            await one(i)
        with count_queries() as counted:
            await one(0)
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        walls = []
        cpus = []  # each order's own CPU: its median shrugs off the bursts another process causes
        cpu_started = time.process_time()
        main_started = time.thread_time()
        if profiler:
            profiler.enable()
        for i in range(args.runs):
            started, started_cpu = time.perf_counter(), time.process_time()
            await one(i)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - started_cpu) * 1000)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        cpu = (time.process_time() - cpu_started) * 1000 / args.runs
        main_cpu = (time.thread_time() - main_started) * 1000 / args.runs
    finally:
        await stop_runtime()
        await close_db()
    print(
        f"placeOrder in-process, {args.runs} sequential orders with prepay ({settings.database_url},"
        f" {args.loop} loop)"
    )
    print(
        f"  CPU per order   {cpu:.2f} ms (this process, threads included; event loop's thread {main_cpu:.2f})"
    )
    print(
        f"  CPU per order   p50 {statistics.median(cpus):.2f} ms (each order's own; steadier on a busy machine)"
    )
    print(f"  wall per order  p50 {statistics.median(walls):.2f} ms, mean {statistics.fmean(walls):.2f} ms")
    print(f"  SQL per order   {counted.count} (whole HTTP request)")
    if args.statements:
        for statement in counted.statements:
            print("   ", statement[:300])


def main() -> None:
    args = parse_args()
    in_process_environment("lianmall-order-cpu-", seed=args.seed)
    ctx = multiprocessing.get_context("spawn")
    ready_here, ready_there = ctx.Pipe()
    stop = ctx.Event()
    pay = ctx.Process(target=_serve_pay, args=(ready_there, stop), daemon=True)
    pay.start()
    appid, mch_id, api_key, base_url = ready_here.recv()
    os.environ.update(
        {
            "WECHAT_APPID": appid,
            "WECHAT_MCH_ID": mch_id,
            "WECHAT_PAY_API_KEY": api_key,
            "WECHAT_PAY_API_BASE_URL": base_url,
        }
    )
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(run(args))
    finally:
        stop.set()
        pay.join(5)


if __name__ == "__main__":
    main()

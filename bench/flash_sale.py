"""Flash-sale benchmark: `python bench/flash_sale.py` (see bench/README.md).

PostgreSQL (database lianmall_bench_flash, dropped and recreated, `main.py migrate`) and Redis (db 12 unless
--redis-url, flushed). A setup step creates, through the project's code, a flash-sale item selling now (allotment
--allotment, one unit per member) and allotment + --losers members with tokens. One `main.py serve` (1 worker,
pinned to a core) then takes two phases, WeChat Pay's unified order answered by the local stand-in:

1. selling: --connections concurrent clients send placeOrder with the flash item, each for the next member, until
   the allotment is gone: winners per second (first to last win) and latency of the winning requests;
2. sold out: wrk (pinned to another core) sends the same placeOrder as a member who holds nothing for --duration
   seconds: attempts per second and latency, every answer the coded INSUFFICIENT_STOCK refusal.

Afterwards the SQL statements of one sold-out attempt (the viewer and the whole mutation) are counted in-process,
and the database is checked: exactly `allotment` units sold. Prints a summary, writes
bench/results/flash_sale.json. Targets: 0 SQL per sold-out attempt, >= 2,000 attempts/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import loadgen
import servers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(REPO_ROOT))

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PRICE = 19900
FLASH_PRICE = 990

PLACE_ORDER = (
    "mutation Flash($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) "
    "{ order { id status payable } payParams { package } errors { field message code } } }"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--allotment", type=int, default=1000, help="units on sale (one per member)")
    parser.add_argument("--losers", type=int, default=200, help="members beyond the allotment")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--duration", type=int, default=8, help="seconds of the sold-out phase (wrk)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of discarded sold-out load first")
    parser.add_argument("--database", default="lianmall_bench_flash")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--wrk-cpu", type=int, default=1)
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "flash_sale.json")
    return parser.parse_args()


# --- backends and setup ------------------------------------------------------------------------------------


async def reset_backends(database: str, redis_url: str) -> None:
    import asyncpg
    from redis.asyncio import Redis

    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {database}")
    finally:
        await admin.close()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def with_runtime(work: Any) -> Any:
    from infra.db import close_db, init_db
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    try:
        return await work()
    finally:
        await stop_runtime()
        await close_db()


async def set_up(allotment: int, members: int) -> dict[str, Any]:
    """A SKU, a slot running now, an activity selling `allotment` of it, and `members` members with tokens."""
    from infra.clock import SHOP_TZ, now
    from models import (
        Category,
        FlashSale,
        FlashSaleItem,
        FlashSaleSession,
        Member,
        MemberSession,
        Product,
        ProductStatus,
        Shop,
        Sku,
    )
    from schema.node import encode_id
    from services.catalog.lookups import default_shop_id
    from services.members import tokens

    shop_id = await default_shop_id()
    category = await Category.create(shop_id=shop_id, name="秒杀压测", level=1)
    stock = allotment * 10
    product = await Product.create(
        shop=await Shop.get(id=shop_id),
        category=category,
        title="秒杀压测商品",
        status=ProductStatus.ON_SALE,
        total_stock=stock,
        min_price=PRICE,
        max_price=PRICE,
    )
    sku = await Sku.create(product=product, spec_key="flash-bench", price=PRICE, stock=stock)
    moment = now().astimezone(SHOP_TZ)
    start = max(0, min(moment.hour * 60 + moment.minute - 1, 22 * 60))  # until midnight, 2 h at least
    session = await FlashSaleSession.create(
        shop_id=shop_id, name="压测场", starts_minute=start, ends_minute=1440
    )
    sale = await FlashSale.create(
        shop_id=shop_id,
        title="压测秒杀",
        starts_on=moment.date() - timedelta(days=1),
        ends_on=moment.date() + timedelta(days=1),
    )
    item = await FlashSaleItem.create(
        flash_sale=sale,
        session=session,
        sku_id=sku.id,
        product_id=product.id,
        flash_price=FLASH_PRICE,
        allotment=allotment,
        per_member_limit=1,
    )
    tag = secrets.token_hex(3)
    await Member.bulk_create(
        [Member(openid=f"fb_{tag}_{i}", invite_code=f"B{tag}{i:06d}") for i in range(members)]
    )
    ids = list(
        await Member.filter(openid__startswith=f"fb_{tag}_").order_by("id").values_list("id", flat=True)
    )
    expires = now() + timedelta(days=1)
    await MemberSession.bulk_create(
        [MemberSession(member_id=i, refresh_hash=secrets.token_hex(32), expires_at=expires) for i in ids]
    )
    sessions = dict(await MemberSession.filter(member_id__in=ids).values_list("member_id", "id"))
    return {
        "item_id": item.id,
        "sku_id": sku.id,
        "stock": stock,
        "members": [(i, tokens._access_token(i, sessions[i])) for i in ids],
        "input": {
            "delivery": "PICKUP",
            "items": [
                {
                    "skuId": encode_id("Sku", sku.id),
                    "quantity": 1,
                    "campaign": {"kind": "FLASH_SALE", "id": encode_id("FlashSaleItem", item.id)},
                }
            ],
        },
    }


# --- phase 1: selling -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def sell(url: str, setup: dict[str, Any], connections: int) -> dict[str, Any]:
    import httpx

    queue = list(setup["members"])
    wins: list[tuple[float, float]] = []  # (finished at, seconds)
    refusals: dict[str, int] = {}
    latencies: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            while queue:
                _, token = queue.pop()
                body = {"query": PLACE_ORDER, "variables": {"input": setup["input"], "key": "k1"}}
                started = time.perf_counter()
                response = await http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
                finished = time.perf_counter()
                latencies.append(finished - started)
                payload = (response.json().get("data") or {}).get("placeOrder") or {}
                if payload.get("order"):
                    wins.append((finished, finished - started))
                else:
                    code = (
                        ",".join(e["code"] for e in payload.get("errors") or [])
                        or f"HTTP {response.status_code}"
                    )
                    refusals[code] = refusals.get(code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    span = (max(w[0] for w in wins) - started) if wins else float("nan")
    win_ms = [w[1] * 1000 for w in wins]
    return {
        "winners": len(wins),
        "seconds_to_sell_out": round(span, 2),
        "winners_per_s": round(len(wins) / span, 1) if wins else 0,
        "winner_latency_ms": {
            "p50": round(percentile(win_ms, 50), 1),
            "p99": round(percentile(win_ms, 99), 1),
        },
        "all_attempts": len(latencies),
        "all_latency_ms": {
            "p50": round(percentile([x * 1000 for x in latencies], 50), 1),
            "p99": round(percentile([x * 1000 for x in latencies], 99), 1),
        },
        "refusals": refusals,
    }


# --- phase 2: sold out (wrk) ------------------------------------------------------------------------------


def sold_out_load(
    url: str, body: bytes, token: str, args: argparse.Namespace, cpu: int | None
) -> dict[str, Any]:
    wrk = loadgen.ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="flash-wrk-"))
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_AUTH": token}

    def run(seconds: int) -> loadgen.LoadResult:
        command = [
            wrk,
            "-t1",
            f"-c{args.connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(BENCH_DIR / "flash.lua"),
            url,
        ]
        out = subprocess.run(
            servers.pinned(command, cpu), env=env, capture_output=True, text=True, check=True
        )
        return loadgen.parse_wrk_output(out.stdout)

    if args.warmup:
        run(args.warmup)
    result = run(args.duration)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "attempts_per_s": round(result.rps, 1),
        "requests": result.requests,
        "latency_ms": {
            "p50": round(result.p50_ms, 2),
            "p90": round(result.p90_ms, 2),
            "p99": round(result.p99_ms, 2),
        },
        "errors": result.errors,
    }


async def count_sold_out_sql(setup: dict[str, Any], token: str) -> dict[str, Any]:
    from infra.query_counter import count_queries
    from schema.context import make_context
    from schema.root import schema
    from services.members.viewer import viewer_for_token

    report: dict[str, Any] = {}
    for _ in range(3):  # the last is the steady state
        with count_queries() as viewer_sql:
            viewer = await viewer_for_token(token)
        with count_queries() as whole:
            result = await schema.execute(
                PLACE_ORDER,
                variable_values={"input": setup["input"], "key": "sql"},
                context_value=make_context(viewer=viewer),
            )
        codes = [e["code"] for e in ((result.data or {}).get("placeOrder") or {}).get("errors") or []]
        report = {"viewer": viewer_sql.count, "mutation": whole.count, "answer": codes}
    return report


async def database_check(setup: dict[str, Any]) -> dict[str, Any]:
    from models import FlashSaleItem, OrderLine, Sku

    lines = await OrderLine.filter(campaign_kind="FLASH_SALE", campaign_id=setup["item_id"]).count()
    item = await FlashSaleItem.get(id=setup["item_id"])
    sku = await Sku.get(id=setup["sku_id"])
    return {"order_lines": lines, "sold": item.sold, "sku_stock_left": sku.stock}


# --- main --------------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="lianmall-bench-flash-"))
    database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DEBUG", "WEB_CONCURRENCY"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "COST_BUCKET_SIZE": "0",  # the crowd is one client here; throttling is not what is measured
            # As in production: a configured key (without one every token check reads the key file).
            "SECRET_KEY": secrets.token_urlsafe(48),
            "SWEEP_INTERVAL_SECONDS": "600",
        }
    )
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DATA_DIR", "COST_BUCKET_SIZE", "SECRET_KEY")}
    )
    from tests.wechat_pay_standin import WeChatPayStandIn

    print(f"PostgreSQL {args.database} (recreated) + {args.redis_url}; allotment {args.allotment}")
    asyncio.run(reset_backends(args.database, args.redis_url))
    migrated = subprocess.run(
        [sys.executable, "main.py", "migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise servers.ServerError(f"migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
    setup = asyncio.run(with_runtime(lambda: set_up(args.allotment, args.allotment + args.losers)))

    pay = WeChatPayStandIn()
    pay.start()
    env.update(
        {
            "WECHAT_APPID": pay.appid,
            "WECHAT_MCH_ID": pay.mch_id,
            "WECHAT_PAY_API_KEY": pay.api_key,
            "WECHAT_PAY_API_BASE_URL": pay.base_url,
        }
    )
    usable = os.sched_getaffinity(0)
    server_cpu = args.server_cpu if args.server_cpu in usable else None
    wrk_cpu = args.wrk_cpu if args.wrk_cpu in usable and args.wrk_cpu != args.server_cpu else None
    port = servers.free_port()
    command = [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = servers.start(
        "lianmall",
        servers.pinned(command, server_cpu),
        port,
        env,
        REPO_ROOT,
        RESULTS_DIR / "flash_sale-server.log",
    )
    try:
        servers.wait_ready(server, timeout_s=args.ready_timeout)
        print(
            f"  selling {args.allotment} units to {len(setup['members'])} members, {args.connections} at once ..."
        )
        selling = asyncio.run(sell(server.url, setup, args.connections))
        # A member who won nothing: the sold-out crowd.
        loser_token = setup["members"][0][1]
        body = json.dumps(
            {"query": PLACE_ORDER, "variables": {"input": setup["input"], "key": "late"}}
        ).encode()
        probe = servers.post_json(server.url, json.loads(body), timeout_s=10)
        print(f"  sold out: wrk {args.duration}s ({args.connections} connections) ...")
        sold_out = sold_out_load(server.url, body, loser_token, args, wrk_cpu)
        rss_kib, _ = servers.worker_rss_kib(server)
    except Exception:
        print(f"--- server log tail ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        servers.stop(server)
        pay.stop()
    del probe
    sql = asyncio.run(with_runtime(lambda: count_sold_out_sql(setup, loser_token)))
    check = asyncio.run(with_runtime(lambda: database_check(setup)))
    exact = check["order_lines"] == check["sold"] == args.allotment == selling["winners"]

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": {"database": database_url, "redis": args.redis_url},
        "allotment": args.allotment,
        "members": len(setup["members"]),
        "connections": args.connections,
        "server_cpu": server_cpu,
        "selling": selling,
        "sold_out": sold_out,
        "sql_per_sold_out_attempt": sql,
        "database_check": {**check, "exact": exact},
        "worker_rss_mb": round(rss_kib / 1024, 1),
    }
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"flash sale, 1 worker, PostgreSQL + Redis, {args.connections} concurrent clients")
    print(
        f"  selling     {selling['winners']} winners in {selling['seconds_to_sell_out']}s = "
        f"{selling['winners_per_s']} winners/s; winner latency p50 {selling['winner_latency_ms']['p50']} ms "
        f"p99 {selling['winner_latency_ms']['p99']} ms; refusals {selling['refusals']}"
    )
    lat = sold_out["latency_ms"]
    print(
        f"  sold out    {sold_out['attempts_per_s']} attempts/s (target >= 2000); p50 {lat['p50']} ms "
        f"p99 {lat['p99']} ms; errors {sold_out['errors']}"
    )
    print(
        f"  SQL         {sql['viewer']} viewer + {sql['mutation']} mutation per sold-out attempt -> {sql['answer']}"
    )
    print(f"  database    {check} ({'exact' if exact else 'MISMATCH'})")
    print(f"  worker      {result['worker_rss_mb']} MB")
    return 0 if exact and sql["mutation"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())

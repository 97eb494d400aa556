"""placeOrder benchmark: `python bench/place_order.py` (see bench/README.md).

PostgreSQL (database lianmall_bench_orders, dropped and recreated, `main.py migrate` + `main.py seed`) and
Redis db 13 (flushed). A setup step creates, through the project's own code, 32 members with tokens and
addresses and one product with one SKU holding ample stock. One `main.py serve` (1 worker, pinned to a core
with taskset) then takes placeOrder from 32 concurrent members for a fixed time, each request with a new
idempotency key, with WeChat Pay's unified order answered by the local stand-in (tests/wechat_pay_standin.py)
running in this process: every order includes its prepay. Afterwards, with the server stopped, the SQL
statements of one placeOrder are counted in-process (infra.query_counter). Prints a summary and writes
bench/results/place_order.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import servers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(REPO_ROOT))

DATABASE = "lianmall_bench_orders"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"

PRICE = 5990  # fen
STOCK = 10_000_000

PLACE_ORDER = (
    "mutation Place($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) "
    "{ order { id number status payable } payParams { appId timeStamp nonceStr package signType paySign } "
    "errors { field message code } } }"
)


@dataclass(frozen=True)
class Shopper:
    member_id: int
    token: str
    address_gid: str


@dataclass(frozen=True)
class Sample:
    started: float  # perf_counter at send
    seconds: float
    error: str | None  # None: an order with payParams came back


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of discarded load first")
    parser.add_argument("--members", type=int, default=32, help="concurrent members (one connection each)")
    parser.add_argument("--server-cpu", type=int, default=0, help="core the server is pinned to")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for startup")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "place_order.json")
    return parser.parse_args()


# --- backends and setup ------------------------------------------------------------------------------------


def bench_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DEBUG", "WEB_CONCURRENCY"))}
    env.update(
        {
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("RESPONSE_CACHE", None)
    return env


async def reset_backends() -> None:
    import asyncpg
    from redis.asyncio import Redis

    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def migrate_and_seed(env: dict[str, str]) -> None:
    for command in ("migrate", "seed"):
        proc = subprocess.run(
            [sys.executable, "main.py", command], env=env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise servers.ServerError(f"`main.py {command}` failed:\n{proc.stdout}\n{proc.stderr}")
        print(f"  main.py {command}: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else 'ok'}")


async def with_runtime(work: Any) -> Any:
    """Run `work()` with the database and the process-wide services up, as the server has them."""
    from infra.db import close_db, init_db
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings

    get_settings.cache_clear()  # the environment gains the WeChat Pay settings between steps
    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    try:
        return await work()
    finally:
        await stop_runtime()
        await close_db()


async def create_shoppers(count: int) -> tuple[list[Shopper], int]:
    """`count` members (token, address) and a product on sale with one SKU; returns them and the SKU id."""
    from models import Category, Member, Product, ProductMedia, ProductStatus, Shop, Sku
    from schema.node import encode_id
    from services.members.addresses import AddressDraft, create_address
    from services.members.tokens import issue_tokens

    tag = secrets.token_hex(3)
    shop = await Shop.create(code=f"bench-{tag}", name=f"压测店 {tag}")
    category = await Category.create(shop=shop, name=f"压测类目 {tag}", level=1)
    product = await Product.create(
        shop=shop,
        category=category,
        title=f"压测商品 {tag}",
        status=ProductStatus.ON_SALE,
        total_stock=STOCK,
        min_price=PRICE,
        max_price=PRICE,
    )
    await ProductMedia.create(product=product, url=f"https://img.example.com/bench-{tag}.jpg", sort=0)
    sku = await Sku.create(product=product, spec_key=f"bench-{tag}", price=PRICE, stock=STOCK)
    shoppers = []
    for i in range(count):
        member = await Member.create(
            openid=f"o_bench_{tag}_{i}", invite_code=secrets.token_hex(5).upper(), nickname=f"压测{i}"
        )
        token = (await issue_tokens(member)).access_token
        draft = AddressDraft(f"压测{i}", "13800138000", "广东省", "深圳市", "南山区", f"科技园 {i} 号")
        address = await create_address(member.id, draft)
        shoppers.append(Shopper(member.id, token, encode_id("Address", address.id)))
    return shoppers, sku.id


def variables(shopper: Shopper, sku_gid: str) -> dict[str, Any]:
    key = f"b-{secrets.token_hex(12)}"
    return {
        "input": {"addressId": shopper.address_gid, "items": [{"skuId": sku_gid, "quantity": 1}]},
        "key": key,
    }


# --- the load ----------------------------------------------------------------------------------------------


def _failure(status: int, body: dict[str, Any]) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    if body.get("errors"):
        return f"GraphQL: {body['errors'][0].get('message')}"
    payload = (body.get("data") or {}).get("placeOrder") or {}
    if payload.get("errors"):
        return ",".join(e["code"] for e in payload["errors"])
    if not payload.get("order") or not payload.get("payParams"):
        return "no order or no payParams"
    return None


async def drive(url: str, shoppers: list[Shopper], sku_gid: str, seconds: float) -> list[Sample]:
    import httpx

    samples: list[Sample] = []
    stop_at = time.perf_counter() + seconds

    async def member_loop(shopper: Shopper) -> None:
        headers = {"Authorization": f"Bearer {shopper.token}"}
        async with httpx.AsyncClient(timeout=30.0) as http:
            while True:  # at least one request each, so a zero duration is a probe
                body = {"query": PLACE_ORDER, "variables": variables(shopper, sku_gid)}
                started = time.perf_counter()
                try:
                    response = await http.post(url, json=body, headers=headers)
                    error = _failure(response.status_code, response.json())
                except (httpx.HTTPError, ValueError) as exc:
                    error = type(exc).__name__
                samples.append(Sample(started, time.perf_counter() - started, error))
                if time.perf_counter() >= stop_at:
                    break

    await asyncio.gather(*(member_loop(s) for s in shoppers))
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[index]


# --- SQL per placeOrder ------------------------------------------------------------------------------------


async def count_sql(shopper: Shopper, sku_gid: str) -> dict[str, Any]:
    """Statements of one placeOrder: the service alone (`checkout.place`), its prepay, and the whole GraphQL
    mutation."""
    from infra.query_counter import count_queries
    from schema.context import make_context
    from schema.node import decode_id
    from schema.root import schema
    from services.members.viewer import viewer_for_token
    from services.orders import checkout
    from services.orders.checkout import CheckoutRequest, ItemRequest

    sku_pk = decode_id(sku_gid, "Sku", "skuId")
    address_pk = decode_id(shopper.address_gid, "Address", "addressId")
    request = CheckoutRequest(address_id=address_pk, items=(ItemRequest(sku_pk, 1),))
    report: dict[str, Any] = {}
    for run in range(3):  # the last is the steady state; the first may fill per-process caches
        with count_queries() as service:
            placed = await checkout.place(shopper.member_id, request, f"sql-{run}")
        with count_queries() as prepay:  # as placeOrder asks for it: with what checkout already read
            await checkout.request_payment(placed.order, placed.new_order)
        viewer = await viewer_for_token(shopper.token)
        with count_queries() as whole:
            result = await schema.execute(
                PLACE_ORDER,
                variable_values=variables(shopper, sku_gid),
                context_value=make_context(viewer=viewer),
            )
        failure = _failure(
            200,
            {"data": result.data, "errors": result.errors and [{"message": str(e)} for e in result.errors]},
        )
        if failure:
            raise RuntimeError(f"placeOrder failed in-process: {failure}")
        report = {
            "place_order_service": service.count,
            "prepay": prepay.count,
            "graphql_mutation": whole.count,
            "graphql_statements": whole.statements,
        }
    return report


async def orders_and_stock(member_ids: list[int], sku_pk: int) -> tuple[int, int]:
    from models import Order, Sku

    return await Order.filter(member_id__in=member_ids).count(), (await Sku.get(id=sku_pk)).stock


# --- main --------------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="lianmall-bench-orders-"))
    env = bench_env(data_dir)
    # This process sets up and counts SQL with the project's code: the same settings as the server.
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DATA_DIR")})
    from schema.node import encode_id
    from tests.wechat_pay_standin import UNIFIEDORDER, WeChatPayStandIn

    print(
        f"PostgreSQL {DATABASE} (recreated) + Redis db 13; {args.members} members, 1 SKU, WeChat Pay stand-in"
    )
    asyncio.run(reset_backends())
    migrate_and_seed(env)
    shoppers, sku_pk = asyncio.run(with_runtime(lambda: create_shoppers(args.members)))
    sku_gid = encode_id("Sku", sku_pk)

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
    os.environ.update({k: env[k] for k in env if k.startswith("WECHAT_")})
    cpu = args.server_cpu if args.server_cpu in os.sched_getaffinity(0) else None
    if cpu is None:
        print(f"warning: core {args.server_cpu} not usable; the server is not pinned", file=sys.stderr)
    port = servers.free_port()
    command = [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = RESULTS_DIR / "place_order-server.log"
    server = servers.start("lianmall", servers.pinned(command, cpu), port, env, REPO_ROOT, log_path)
    try:
        servers.wait_ready(server, timeout_s=args.ready_timeout)
        probe = asyncio.run(drive(server.url, shoppers[:1], sku_gid, 0.0))  # one request, checked
        if probe[0].error:
            raise servers.ServerError(f"placeOrder failed before the load: {probe[0].error}")
        print(
            f"  warm-up {args.warmup:g}s, then {args.duration:g}s with {args.members} concurrent members ..."
        )
        samples = asyncio.run(drive(server.url, shoppers, sku_gid, args.warmup + args.duration))
        rss_kib, _ = servers.worker_rss_kib(server)
    except Exception:
        print(f"--- server log tail ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        servers.stop(server)
    prepays = len(pay.calls(UNIFIEDORDER))

    first = min(s.started for s in samples)
    measured = [s for s in samples if s.started >= first + args.warmup]
    window = max(s.started + s.seconds for s in measured) - min(s.started for s in measured)
    ok = [s.seconds * 1000 for s in measured if s.error is None]
    errors = [s.error for s in samples if s.error is not None]  # warm-up included: none is allowed
    all_ok = sum(1 for s in samples if s.error is None) + 1  # + the probe

    member_ids = [s.member_id for s in shoppers]
    orders, stock = asyncio.run(with_runtime(lambda: orders_and_stock(member_ids, sku_pk)))
    consistent = orders == all_ok and stock == STOCK - all_ok
    sql = asyncio.run(with_runtime(lambda: count_sql(shoppers[0], sku_gid)))
    pay.stop()

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": {"database": DATABASE_URL, "redis": REDIS_URL, "wechat_pay": "in-process stand-in"},
        "members": args.members,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "server_cpu": cpu,
        "orders": len(ok),
        "orders_per_s": round(len(ok) / window, 1),
        "latency_ms": {
            "p50": round(percentile(ok, 50), 1),
            "p90": round(percentile(ok, 90), 1),
            "p99": round(percentile(ok, 99), 1),
            "max": round(max(ok), 1),
            "mean": round(statistics.fmean(ok), 1),
        },
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "database_check": {"orders": orders, "answered_ok": all_ok, "stock_left": stock, "ok": consistent},
        "unifiedorder_calls": prepays,
        "worker_rss_mb": round(rss_kib / 1024, 1),
        "sql_per_place_order": sql,
    }
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"placeOrder, {args.members} concurrent members, {window:.1f}s measured (PostgreSQL, 1 worker)")
    print(f"  throughput      {result['orders_per_s']} orders/s ({len(ok)} orders)")
    lat = result["latency_ms"]
    print(f"  latency (ms)    p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
    print(f"  errors          {len(errors)} {result['error_kinds'] or ''}")
    print(
        f"  database        {orders} orders = {all_ok} answered, stock {stock} ({'ok' if consistent else 'MISMATCH'})"
    )
    print(f"  WeChat Pay      {prepays} unified orders at the stand-in (every order includes its prepay)")
    print(
        f"  SQL/placeOrder  {sql['graphql_mutation']} for the whole mutation = "
        f"{sql['place_order_service']} checkout.place_order + {sql['prepay']} prepay "
        f"+ {sql['graphql_mutation'] - sql['place_order_service'] - sql['prepay']} other"
    )
    print(f"  worker memory   {result['worker_rss_mb']} MB")
    print(
        f"  -> {args.output.relative_to(REPO_ROOT) if args.output.is_relative_to(REPO_ROOT) else args.output}"
    )
    return 0 if not errors and consistent else 2


if __name__ == "__main__":
    sys.exit(main())

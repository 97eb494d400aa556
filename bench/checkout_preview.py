"""checkoutPreview benchmark, in-process: `python bench/checkout_preview.py [--real]` (see bench/README.md).

A member with 30 held coupons (cash, threshold and capped discount; all, category and product scopes; most
stackable) previews an order of 20 lines while 5 promotions run (`--promotions`: a limited-time 9折 on two
categories, 满300减40, 满500 9.5折 capped, an every-day member discount, free shipping from 2 items). Each run is one `schema.execute` of the README's CouponPreview query
with a fresh context (fresh dataloaders, like one HTTP request), so the time covers the whole pipeline: unit
prices, the registered promotion steps (whatever marketing has registered), the coupon verdicts and the exact
best-combination search, points and shipping, and the GraphQL result. The garbage collector is tuned as a served
process tunes it after start-up (infra/gc_tuning.py; `--untuned` leaves it). Prints p50 / p99 over `--runs`, the
CPU time per preview (time.process_time of this process, SQLite's thread included), the SQL statements of one
run. Target: p99 <= 20 ms.

Embedded default (fresh SQLite in a temp DATA_DIR, in-process Redis) unless `--real` (PostgreSQL database
lianmall_bench_preview, dropped and recreated, and Redis db 12, flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DATABASE = "lianmall_bench_preview"
REAL_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REAL_REDIS_URL = "redis://127.0.0.1:6379/12"

PREVIEW = """query CouponPreview($input: CheckoutInput!) {
  checkoutPreview(input: $input) {
    preview {
      discount payable
      lines { lineTotal discount }
      discounts { stage source sourceId title amount }
      coupons { memberCoupon { id coupon { name summary } } applicable reason gap discount selected }
    }
    errors { field message code }
  }
}"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real", action="store_true", help="PostgreSQL + Redis instead of the embedded default"
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--coupons", type=int, default=30)
    parser.add_argument("--promotions", type=int, default=5, help="running promotions (0 to 5)")
    parser.add_argument("--profile", action="store_true", help="print where the timed runs spend their time")
    parser.add_argument("--sort", default="cumulative", help="--profile's order (cumulative, tottime, ...)")
    parser.add_argument(
        "--untuned", action="store_true", help="leave the garbage collector as it is (no tune_for_serving)"
    )
    return parser.parse_args()


async def _reset_postgres() -> None:
    import asyncpg

    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()


async def _promotions(count: int, category_ids: list[int]) -> None:
    """Up to 5 running promotions: a limited-time 9折 on two categories, 满300减40, 满500 9.5折 capped, an
    every-day member discount and free shipping from 2 items."""
    from datetime import timedelta

    from infra.clock import now
    from models import PromotionKind, PromotionStatus
    from services.marketing.promotions import admin

    every_day = [1, 2, 3, 4, 5, 6, 7]
    specs = [
        (
            PromotionKind.LIMITED_TIME,
            "限时9折",
            [("CATEGORIES", {"ids": category_ids[:2]})],
            [("PERCENT_OFF", {"percent": 10})],
        ),
        (
            PromotionKind.THRESHOLD,
            "满300减40",
            [("MIN_AMOUNT", {"amount": 30000})],
            [("AMOUNT_OFF", {"amount": 4000})],
        ),
        (
            PromotionKind.THRESHOLD,
            "满500享95折",
            [("MIN_AMOUNT", {"amount": 50000})],
            [("PERCENT_OFF", {"percent": 5, "cap": 5000})],
        ),
        (
            PromotionKind.MEMBER_DAY,
            "会员日立减5元",
            [("WEEKDAYS", {"days": every_day})],
            [("AMOUNT_OFF", {"amount": 500})],
        ),
        (PromotionKind.THRESHOLD, "两件包邮", [("MIN_QUANTITY", {"quantity": 2})], [("FREE_SHIPPING", {})]),
    ]
    for kind, title, conditions, actions in specs[:count]:
        row = await admin.create_promotion(
            admin.PromotionDraft(
                title=title,
                kind=kind,
                starts_at=now() - timedelta(hours=1),
                ends_at=now() + timedelta(days=1),
                conditions=[{"type": t, "args": a} for t, a in conditions],
                actions=[{"type": t, "args": a} for t, a in actions],
            )
        )
        await admin.set_status(row.id, PromotionStatus.ACTIVE)


async def _setup(lines: int, coupons: int, promotions: int = 0) -> tuple[str, dict[str, Any]]:
    """A shop with `lines` SKUs in 4 categories, `promotions` running promotions, a member holding `coupons`
    coupons; the member's token and the checkout input."""
    from models import (
        Category,
        CouponKind,
        CouponScope,
        CouponSource,
        Member,
        Product,
        ProductStatus,
        Shop,
        Sku,
    )
    from schema.node import encode_id
    from services.marketing.coupons import templates, wallet
    from services.members.addresses import AddressDraft, create_address
    from services.members.tokens import issue_tokens

    tag = secrets.token_hex(3)
    shop = await Shop.create(code=f"bench-{tag}", name="压测店")
    categories = [await Category.create(shop=shop, name=f"类目{i}", level=1) for i in range(4)]
    skus = []
    for i in range(lines):
        price = 1990 + 700 * i
        product = await Product.create(
            shop=shop,
            category=categories[i % 4],
            title=f"商品{i}",
            status=ProductStatus.ON_SALE,
            total_stock=10_000,
            min_price=price,
            max_price=price,
        )
        skus.append(await Sku.create(product=product, spec_key=f"s{i}", price=price, stock=10_000))
    await _promotions(promotions, [c.id for c in categories])
    member = await Member.create(openid=f"o_{tag}", invite_code=tag.upper())
    for i in range(coupons):
        kind = (CouponKind.CASH, CouponKind.THRESHOLD, CouponKind.DISCOUNT)[i % 3]
        scope = (CouponScope.ALL, CouponScope.CATEGORIES, CouponScope.PRODUCTS)[i % 3]
        scope_ids = (
            ()
            if scope == CouponScope.ALL
            else (
                (categories[i % 4].id,) if scope == CouponScope.CATEGORIES else (skus[i % lines].product_id,)  # type: ignore[attr-defined]
            )
        )
        coupon = await templates.create_coupon(
            templates.CouponDraft(
                name=f"券{i}",
                kind=kind,
                total_quantity=100,
                valid_days=30,
                amount_off=0 if kind == CouponKind.DISCOUNT else 300 + 100 * i,
                min_amount=0 if kind == CouponKind.CASH else 5000 * (1 + i % 5),
                discount_percent=90,
                max_discount=2000 if kind == CouponKind.DISCOUNT else 0,
                scope=scope,
                scope_ids=scope_ids,
                stackable=i % 4 != 0,
            )
        )
        await wallet.grant(member.id, coupon.id, CouponSource.ISSUED)
    address = await create_address(
        member.id, AddressDraft("林晓", "13800138000", "广东省", "深圳市", "南山区", "科技园南路 88 号")
    )
    token = (await issue_tokens(member)).access_token
    checkout_input = {
        "addressId": encode_id("Address", address.id),
        "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1 + i % 3} for i, sku in enumerate(skus)],
    }
    return token, checkout_input


async def main() -> None:
    args = parse_args()
    if args.real:
        os.environ["DATABASE_URL"] = REAL_DATABASE_URL
        os.environ["REDIS_URL"] = REAL_REDIS_URL
        await _reset_postgres()
    else:
        os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="lianmall-bench-preview-")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "false"
    os.environ["WECHAT_SANDBOX"] = "false"
    # One member asks hundreds of times a second: throttling would answer RATE_LIMITED, not measure pricing.
    os.environ["COST_BUCKET_SIZE"] = "0"

    from infra.db import close_db, init_db, migrate_db
    from infra.query_counter import count_queries
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from schema.context import make_context
    from schema.root import schema
    from services.members.viewer import viewer_for_token

    settings = get_settings()
    await migrate_db(settings)
    await close_db()
    await init_db(settings)
    runtime = await start_runtime(settings)
    if args.real:
        await runtime.redis.flushdb()  # type: ignore[attr-defined]
    try:
        token, checkout_input = await _setup(args.lines, args.coupons, args.promotions)

        async def once() -> dict[str, Any]:
            context = make_context(await viewer_for_token(token))
            result = await schema.execute(
                PREVIEW, variable_values={"input": checkout_input}, context_value=context
            )
            assert not result.errors, result.errors
            assert result.data is not None
            payload: dict[str, Any] = result.data["checkoutPreview"]
            assert not payload["errors"], payload["errors"]
            return payload

        first = await once()
        for _ in range(10):
            await once()
        if not args.untuned:
            from infra.gc_tuning import tune_for_serving

            # What the app's lifespan does once start-up is done (main.py), so p99 sees a served process's GC.
            tune_for_serving()
        with count_queries() as counted:
            await once()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        times = []
        cpu_started = time.process_time()
        for _ in range(args.runs):
            started = time.perf_counter()
            await once()
            times.append((time.perf_counter() - started) * 1000)
        cpu_ms = (time.process_time() - cpu_started) * 1000 / args.runs
        if profiler is not None:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(args.sort)
            stats.print_stats(40)
            stats.dump_stats(os.path.join(tempfile.gettempdir(), "checkout_preview.prof"))
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        preview = first["preview"]
        selected = sum(1 for c in preview["coupons"] if c["selected"])
        usable = sum(1 for c in preview["coupons"] if c["applicable"])
        backend = "PostgreSQL + Redis" if args.real else "embedded (SQLite + in-process Redis)"
        print(
            f"checkoutPreview, {args.lines} lines, {args.promotions} running promotions, {args.coupons} held coupons "
            f"({usable} usable, {selected} picked), {backend}"
        )
        print(f"  runs {args.runs}: p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 <= 20 ms)")
        # CPU time of this process only: on a loaded machine it says what the preview costs, whatever waits.
        print(f"  CPU per preview (this process): {cpu_ms:.2f} ms")
        print(f"  SQL statements per preview: {counted.count}; discount {preview['discount']} fen")
    finally:
        await stop_runtime()
        await close_db()


if __name__ == "__main__":
    asyncio.run(main())

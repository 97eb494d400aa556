"""The hot product page while it sells: the "during sale" scenario of `bench/run.py` (see bench/README.md).

`bench/run.py` measures the quiet hot page first. Then, on the same cache-on server, for each rate N: wrk puts
the same load on the same product page while a driver places N orders/s on that product's SKU through the
API (right after measuring that page quiet again, the ratio's denominator) (`placeOrder`, "buy now", quantity 1, a new idempotency key each, one of `SHOPPERS` members in turn). The
driver is open-loop (an order every 1/N s whatever the answers) and runs in its own process pinned to wrk's
core, so that the server's core does nothing else. It reports the orders placed per second and their latency;
the page's req/s over the quiet req/s is the sale/quiet ratio (target >= 0.7 at 100 orders/s).

Run as a script it is those two helpers, in the server's environment (same database, same secret key):
`setup PRODUCT_GID` makes the members (tokens, addresses) and gives the product's first SKU ample stock,
`orders` drives the orders and prints its summary as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SHOPPERS = 64
STOCK = 10_000_000
ORDER_TARGET_RATIO = 0.7
# How long orders still open when the schedule ends may take before they count as unanswered.
GRACE_SECONDS = 10.0

PLACE_ORDER = (
    "mutation Place($input: CheckoutInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) "
    "{ order { id status } errors { code } } }"
)


@dataclass(frozen=True)
class SaleRound:
    page: Any  # loadgen.LoadResult of the page under wrk while the orders are placed
    orders: dict[str, Any]  # the driver's summary
    # The same page under the same load measured right before, without orders: the ratio's denominator. The
    # machine's speed drifts by several percent over a minute (a VM's CPU), so the quiet row measured a minute
    # earlier would put that drift into the ratio.
    quiet: Any

    @property
    def ratio(self) -> float:
        return float(self.page.rps / self.quiet.rps) if self.quiet.rps else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "page": self.page.to_json(),
            "quiet_page": self.quiet.to_json(),
            "sale_quiet_ratio": self.ratio,
        }


@dataclass(frozen=True)
class SaleResult:
    """One rate's rounds. Rounds of the same rate on the same server differ by up to ~0.15 in their ratio (seen
    0.68-0.85 in four rounds in a row), so the figure is the median round's, and every round is reported."""

    rate: int  # orders/s asked for
    rounds: list[SaleRound]

    @property
    def median(self) -> SaleRound:
        ordered = sorted(self.rounds, key=lambda r: r.ratio)
        return ordered[(len(ordered) - 1) // 2]

    def to_json(self) -> dict[str, Any]:
        return {
            "orders_per_s_target": self.rate,
            **self.median.to_json(),
            "round_ratios": [r.ratio for r in self.rounds],
            "rounds": [r.to_json() for r in self.rounds],
        }


# --- used by bench/run.py ---------------------------------------------------------------------------------


def prepare(env: dict[str, str], server_dir: Path, product_gid: str, workdir: Path) -> Path:
    """Members and stock for the sale, made by the project's own code in the server's environment; returns the
    file the driver reads them from."""
    out = workdir / "sale-shoppers.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "during_sale.py"), "setup", product_gid, str(out)],
        env=env,
        cwd=server_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sale setup failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return out


def start_orders(
    url: str, shoppers: Path, rate: int, seconds: float, warmup: float, cpu: int | None, env: dict[str, str]
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(BENCH_DIR / "during_sale.py"),
        "orders",
        url,
        str(shoppers),
        str(rate),
        str(seconds),
        str(warmup),
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_orders(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("the order driver did not finish") from None
    if proc.returncode != 0:
        raise RuntimeError(f"order driver failed (exit {proc.returncode}):\n{stdout}\n{stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return summary


# --- the helpers, in the server's environment -------------------------------------------------------------


async def _setup(product_gid: str) -> dict[str, Any]:
    from tortoise.expressions import F

    from infra.db import close_db, init_db
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from models import Member, Product, Sku
    from schema.node import decode_id, encode_id
    from services.members.addresses import AddressDraft, create_address
    from services.members.tokens import issue_tokens

    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    try:
        product_id = decode_id(product_gid, "Product", "id")
        sku = await Sku.filter(product_id=product_id).order_by("id").first()
        if sku is None:
            raise RuntimeError(f"product {product_gid} has no SKU")
        added = STOCK - sku.stock
        # Written behind the cache's back on purpose: stock is not in cached answers (each server process
        # reads it again within a second), so a restock needs no invalidation.
        await Sku.filter(id=sku.id).update(stock=STOCK)
        await Product.filter(id=product_id).update(total_stock=F("total_stock") + added)
        tag = secrets.token_hex(3)
        shoppers = []
        for i in range(SHOPPERS):
            member = await Member.create(
                openid=f"o_sale_{tag}_{i}", invite_code=secrets.token_hex(5).upper(), nickname=f"抢购{i}"
            )
            token = (await issue_tokens(member)).access_token
            draft = AddressDraft(f"抢购{i}", "13800138000", "广东省", "深圳市", "南山区", f"科技园 {i} 号")
            address = await create_address(member.id, draft)
            shoppers.append({"token": token, "address": encode_id("Address", address.id)})
        return {"sku": encode_id("Sku", sku.id), "shoppers": shoppers}
    finally:
        await stop_runtime()
        await close_db()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))] if ordered else 0.0


async def _orders(
    url: str, setup: dict[str, Any], rate: int, seconds: float, warmup: float
) -> dict[str, Any]:
    import httpx

    sku, shoppers = setup["sku"], setup["shoppers"]
    samples: list[tuple[float, float, str | None]] = []  # (sent, seconds, error)
    unanswered: list[float] = []  # sent at

    async def place(http: httpx.AsyncClient, index: int) -> None:
        shopper = shoppers[index % len(shoppers)]
        body = {
            "query": PLACE_ORDER,
            "variables": {
                "input": {"addressId": shopper["address"], "items": [{"skuId": sku, "quantity": 1}]},
                "key": f"sale-{secrets.token_hex(10)}",
            },
        }
        sent = time.perf_counter()
        try:
            reply = await http.post(url, json=body, headers={"Authorization": f"Bearer {shopper['token']}"})
            payload = (reply.json().get("data") or {}).get("placeOrder") or {}
            order = payload.get("order")
            error = None if reply.status_code == 200 and order else f"HTTP {reply.status_code}: {payload}"
        except httpx.TimeoutException:
            unanswered.append(sent)
            return
        except (httpx.HTTPError, ValueError) as exc:
            error = type(exc).__name__
        samples.append((sent, time.perf_counter() - sent, error))

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    # An order unanswered after GRACE_SECONDS counts as such (its latency is not in the percentiles).
    async with httpx.AsyncClient(timeout=GRACE_SECONDS, limits=limits) as http:
        start = time.perf_counter()
        tasks = []
        index = 0
        while (due := start + index / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(place(http, index)))
            index += 1
        # Orders the server could not answer by then are counted as unanswered, not waited for forever.
        _, late = await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        for task in late:
            task.cancel()
    measured = [s for s in samples if s[0] >= start + warmup]
    ok = [s[1] * 1000 for s in measured if s[2] is None]
    errors = [s[2] for s in samples if s[2] is not None]
    # Orders sent in the measured window and answered, per second of it: below the rate asked when the
    # server fell behind (then some are unanswered, and their latency is not in the percentiles).
    window = seconds - warmup
    return {
        "asked": index,
        "unanswered": len(late) + len(unanswered),
        "placed": len(ok),
        "orders_per_s": round(len(ok) / window, 1) if window > 0 else 0.0,
        "p50_ms": round(_percentile(ok, 50), 1),
        "p99_ms": round(_percentile(ok, 99), 1),
        "max_ms": round(max(ok, default=0.0), 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main(argv: list[str]) -> int:
    sys.path.insert(0, os.getcwd())  # the server's directory: the project's modules
    if argv[:1] == ["setup"]:
        Path(argv[2]).write_text(json.dumps(asyncio.run(_setup(argv[1]))))
        return 0
    if argv[:1] == ["orders"]:
        url, shoppers, rate, seconds, warmup = argv[1:6]
        setup = json.loads(Path(shoppers).read_text())
        summary = asyncio.run(_orders(url, setup, int(rate), float(seconds), float(warmup)))
        print(json.dumps(summary))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Lianmall throughput benchmark: `python bench/run.py` (see bench/README.md).

Measures, one process at a time on a pinned core: a bare Starlette endpoint (the ceiling), then Lianmall's hot
product page and hot category listing with the response cache on, then the same queries cold with the cache
off. Prints a table and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import cpustat
import during_sale
import loadgen
import servers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

PRODUCT_QUERY = (
    "query ProductPage($id: ID!) { product(id: $id) { id title subtitle price { min max } "
    "skus { id price originalPrice stock specValues { name value } } category { name } tags { name } } }"
)
LISTING_QUERY = (
    "query Listing($c: ID!) { products(first: 20, filter: {categoryId: $c}, sort: SALES) { totalCount "
    "edges { cursor node { id title price { min max } media { url } brand { name } tags { name } } } "
    "pageInfo { hasNextPage endCursor } } }"
)
IDS_QUERY = "{ products(first: 1, sort: SALES) { edges { node { id category { id } } } } }"
# The top seller's category and its ancestors, most specific first: the listing uses the first that fills a
# page of 20, since a leaf category may hold only a handful of products.
CATEGORY_CHAIN_QUERY = "query Chain($c: ID!) { category(id: $c) { breadcrumbs { id } } }"
CATEGORY_SIZE_QUERY = "query Size($c: ID!) { products(first: 1, filter: {categoryId: $c}) { totalCount } }"
LISTING_PAGE = 20

# Same options as `main.py serve` passes to uvicorn.run (workers=1, access_log off, log_level warning,
# proxy_headers), so the ceiling differs from the server only by the application.
UVICORN_FLAGS = ["--workers", "1", "--no-access-log", "--log-level", "warning", "--proxy-headers"]
FAST_IO_FLAGS = ["--loop", "uvloop", "--http", "httptools"]

REAL_DATABASE = "lianmall_bench"
REAL_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{REAL_DATABASE}"
REAL_REDIS_URL = "redis://127.0.0.1:6379/14"

MEMORY_TARGET_MB = 200.0
# Background CPU use (in cores) above which the numbers are flagged as disturbed.
BUSY_WARNING_CORES = 0.15
# The hot path counts as served from the cache only if it is at least this much faster than a cache miss.
CACHE_SPEEDUP = 2.0
# Issue 9: the p99 of every scenario within this many times its p50 under the load (c32).
TAIL_TARGET = 3.0


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    query: str
    id_field: str  # which discovered id the query's variable takes
    variable: str
    cache: bool
    target: float | None  # minimum ratio to the ceiling's req/s
    cold_twin: str | None = None  # the cache-off scenario whose speed proves this one is cached


SCENARIOS = [
    Scenario("product_hot", "product page (hot)", PRODUCT_QUERY, "product", "id", True, 0.5, "product_cold"),
    Scenario("listing_hot", "listing of 20 (hot)", LISTING_QUERY, "category", "c", True, 0.3, "listing_cold"),
    Scenario("listing_cold", "listing of 20 (cold, cache off)", LISTING_QUERY, "category", "c", False, None),
    Scenario("product_cold", "product page (cold, cache off)", PRODUCT_QUERY, "product", "id", False, None),
]


@dataclass(frozen=True)
class Probe:
    """What the one checked request before the load showed."""

    response_bytes: int
    response_headers: dict[str, str]
    items: int | None  # products in a listing response


@dataclass(frozen=True)
class Measured:
    load: loadgen.LoadResult
    probe: Probe | None = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Whole seconds: wrk does not take fractional durations.
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of discarded load first (0: none)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--real", action="store_true", help=f"PostgreSQL ({REAL_DATABASE}, recreated) + Redis db 14"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each scenario, wait up to S seconds for other processes to go quiet (shared machines)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server under test")
    parser.add_argument("--wrk-cpu", type=int, default=1, help="core for wrk")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for startup")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--sale-rates",
        type=lambda text: [int(r) for r in text.split(",") if r.strip()],
        default=[20, 100],
        metavar="N,N",
        help="orders/s placed on the hot product during the 'during sale' rows ('' to skip them)",
    )
    parser.add_argument(
        "--sale-rounds",
        type=int,
        default=3,
        help="rounds (quiet, then selling) per sale rate; the median round's ratio is the figure",
    )
    # For testing the harness against a stand-in: a directory with a main.py that has a `serve` command.
    parser.add_argument("--server-dir", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser.parse_args()


def cpu_pinning(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """(server core, wrk core), or (None, None) when we can't give each its own core."""
    usable = os.sched_getaffinity(0)
    if shutil.which("taskset") is None:
        print("warning: taskset not found; server and wrk are not pinned", file=sys.stderr)
        return None, None
    if args.server_cpu == args.wrk_cpu or not {args.server_cpu, args.wrk_cpu} <= usable:
        print(f"warning: cores {args.server_cpu}/{args.wrk_cpu} not usable ({sorted(usable)}); not pinning")
        return None, None
    return args.server_cpu, args.wrk_cpu


def fast_io_flags() -> list[str]:
    """What uvicorn's default "auto" picks for the server, made explicit for the ceiling."""
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError:
        return []
    return FAST_IO_FLAGS


def base_env() -> dict[str, str]:
    """Our environment minus anything that would point the server at another backend or cache mode."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "RESPONSE_CACHE", "DATA_DIR", "DEBUG", "WEB_CONCURRENCY"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    # wrk is one client address asking as fast as the server answers: the per-caller query-cost buckets (a
    # production limit per shopper / IP) would measure themselves, not the server (a cold listing costs ~400).
    env["COST_BUCKET_SIZE"] = "0"
    env["COST_BUCKET_SIZE_PER_IP"] = "0"
    return env


def server_env(data_dir: Path, real: bool, cache: bool) -> dict[str, str]:
    env = base_env()
    env["DATA_DIR"] = str(data_dir)
    if real:
        env["DATABASE_URL"] = REAL_DATABASE_URL
        env["REDIS_URL"] = REAL_REDIS_URL
    if not cache:
        env["RESPONSE_CACHE"] = "0"
    return env


async def _reset_real_backends() -> None:
    import asyncpg
    from redis.asyncio import Redis

    admin = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {REAL_DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {REAL_DATABASE}")
    finally:
        await admin.close()
    redis = Redis.from_url(REAL_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def reset_real_backends() -> None:
    """A fresh bench database and an empty Redis db 14, so every run starts from the same seed."""
    asyncio.run(_reset_real_backends())


def prepare_real_database(env: dict[str, str], server_dir: Path) -> None:
    """`serve` migrates and seeds only the embedded database; on PostgreSQL that is the operator's job."""
    for command in ("migrate", "seed"):
        proc = subprocess.run(
            [sys.executable, "main.py", command],
            env=env,
            cwd=server_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise servers.ServerError(f"`main.py {command}` failed:\n{proc.stdout}\n{proc.stderr}")
        print(f"  main.py {command}: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else 'ok'}")


def measure_ceiling(
    wrk: str, load: loadgen.LoadSettings, server_cpu: int | None, workdir: Path
) -> tuple[Measured, int]:
    port = servers.free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "ceiling:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *UVICORN_FLAGS,
        *fast_io_flags(),
    ]
    server = servers.start(
        "ceiling", servers.pinned(command, server_cpu), port, base_env(), BENCH_DIR, workdir / "ceiling.log"
    )
    try:
        servers.wait_ready(server, timeout_s=30)
        body = json.dumps({"query": "{ __typename }"}).encode()
        result = loadgen.run_wrk(wrk, server.url, body, load, workdir, "ceiling", servers.serving_pid(server))
        rss_kib, _ = servers.worker_rss_kib(server)
    finally:
        servers.stop(server)
    return Measured(load=result), rss_kib


def discover_ids(server: servers.RunningServer) -> dict[str, str]:
    """Global ids of the top-selling product and of the category to list (see CATEGORY_CHAIN_QUERY)."""
    reply = servers.post_json(server.url, {"query": IDS_QUERY})
    try:
        node = reply.payload["data"]["products"]["edges"][0]["node"]
        ids = {"product": str(node["id"]), "category": str(node["category"]["id"])}
    except (KeyError, IndexError, TypeError) as error:
        raise servers.ServerError(f"cannot find ids (HTTP {reply.status}): {reply.payload}") from error
    ids["category"] = full_page_category(server, ids["category"])
    return ids


def full_page_category(server: servers.RunningServer, leaf: str) -> str:
    chain = servers.post_json(server.url, {"query": CATEGORY_CHAIN_QUERY, "variables": {"c": leaf}})
    try:
        candidates = [str(c["id"]) for c in reversed(chain.payload["data"]["category"]["breadcrumbs"])]
    except (KeyError, TypeError):
        print(
            f"warning: no category breadcrumbs ({chain.payload}); listing the leaf category", file=sys.stderr
        )
        return leaf
    sizes: dict[str, int] = {}
    for category in candidates:
        reply = servers.post_json(server.url, {"query": CATEGORY_SIZE_QUERY, "variables": {"c": category}})
        sizes[category] = int((reply.payload.get("data") or {}).get("products", {}).get("totalCount", 0))
        if sizes[category] >= LISTING_PAGE:
            return category
    largest = max(sizes, key=sizes.__getitem__, default=leaf)
    print(f"warning: no category on the top seller's path has {LISTING_PAGE} products; using {sizes}")
    return largest


def request_body(scenario: Scenario, ids: dict[str, str]) -> dict[str, Any]:
    return {"query": scenario.query, "variables": {scenario.variable: ids[scenario.id_field]}}


def check_response(server: servers.RunningServer, scenario: Scenario, body: dict[str, Any]) -> Probe:
    """One request before the load.

    wrk only sees HTTP statuses: a 200 carrying GraphQL errors would otherwise be benchmarked as a success.
    """
    reply = servers.post_json(server.url, body)
    data = reply.payload.get("data") or {}
    if reply.status != 200 or reply.payload.get("errors") or not any(data.values()):
        detail = str(reply.payload)[:2000]
        raise servers.ServerError(f"{scenario.label}: bad response (HTTP {reply.status}): {detail}")
    edges = (data.get("products") or {}).get("edges")
    items = None if edges is None else len(edges)
    return Probe(response_bytes=reply.size, response_headers=reply.headers, items=items)


def measure_server(
    cache: bool,
    args: argparse.Namespace,
    wrk: str,
    load: loadgen.LoadSettings,
    server_cpu: int | None,
    data_dir: Path,
    workdir: Path,
    sale: dict[int, during_sale.SaleResult] | None = None,
) -> tuple[dict[str, Measured], int, dict[str, str]]:
    """Start Lianmall with the cache on or off, run its scenarios, return results, worker RSS and the ids.
    With `sale` (cache on), also the "during sale" rows, into `sale`."""
    port = servers.free_port()
    command = [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    name = "lianmall-cache-on" if cache else "lianmall-cache-off"
    env = server_env(data_dir, args.real, cache)
    env.update(getattr(args, "sale_env", {}))
    server = servers.start(
        name, servers.pinned(command, server_cpu), port, env, args.server_dir, workdir / f"{name}.log"
    )
    results: dict[str, Measured] = {}
    try:
        servers.wait_ready(server, timeout_s=args.ready_timeout)
        ids = discover_ids(server)
        for scenario in (s for s in SCENARIOS if s.cache == cache):
            body = request_body(scenario, ids)
            probe = check_response(server, scenario, body)
            print(f"  {scenario.label} ...", flush=True)
            pid = servers.serving_pid(server)
            result = loadgen.run_wrk(
                wrk, server.url, json.dumps(body).encode(), load, workdir, scenario.key, pid
            )
            results[scenario.key] = Measured(load=result, probe=probe)
        if sale is not None and "product_hot" in results:
            measure_sale(server, ids, args, wrk, load, env, workdir, sale)
        rss_kib, _ = servers.worker_rss_kib(server)
    except Exception:
        print(f"--- {name} log tail ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        servers.stop(server)
    return results, rss_kib, ids


def measure_sale(
    server: servers.RunningServer,
    ids: dict[str, str],
    args: argparse.Namespace,
    wrk: str,
    load: loadgen.LoadSettings,
    env: dict[str, str],
    workdir: Path,
    sale: dict[int, during_sale.SaleResult],
) -> None:
    """The hot product page under the same wrk load while N orders/s are placed on it (bench/during_sale.py)."""
    shoppers = during_sale.prepare(env, args.server_dir, ids["product"], workdir)
    hot = next(s for s in SCENARIOS if s.key == "product_hot")
    body = json.dumps(request_body(hot, ids)).encode()
    for rate in args.sale_rates:
        rounds = []
        for number in range(1, args.sale_rounds + 1):
            if load.quiet_wait_s > 0:
                cpustat.wait_for_quiet(load.quiet_wait_s, load.quiet_cores)
            print(
                f"  product page (hot), quiet, then while {rate} orders/s are placed on it"
                f" (round {number} of {args.sale_rounds}) ...",
                flush=True,
            )
            rounds.append(
                sale_round(server, shoppers, rate, body, wrk, load, env, workdir, f"{rate}_{number}")
            )
        sale[rate] = during_sale.SaleResult(rate, rounds)


def sale_round(
    server: servers.RunningServer,
    shoppers: Path,
    rate: int,
    body: bytes,
    wrk: str,
    load: loadgen.LoadSettings,
    env: dict[str, str],
    workdir: Path,
    label: str,
) -> during_sale.SaleRound:
    """The page quiet, then the page while `rate` orders/s are placed (each wrk run with its warm-up)."""
    quiet = loadgen.run_wrk(
        wrk, server.url, body, replace(load, quiet_wait_s=0.0), workdir, f"quiet_{label}", None
    )
    # The driver's warm-up is wrk's: both measure the seconds after it.
    seconds = load.warmup_s + load.duration_s + 1
    driver = during_sale.start_orders(server.url, shoppers, rate, seconds, load.warmup_s, load.cpu, env)
    try:
        page = loadgen.run_wrk(
            wrk, server.url, body, replace(load, quiet_wait_s=0.0), workdir, f"sale_{label}", None
        )
    finally:
        orders = during_sale.finish_orders(driver, timeout=seconds + during_sale.GRACE_SECONDS + 30)
    if orders["errors"]:
        raise loadgen.LoadError(f"{orders['errors']} orders failed during the sale: {orders['first_error']}")
    return during_sale.SaleRound(page, orders, quiet)


def count_sql(env: dict[str, str], ids: dict[str, str], server_dir: Path) -> dict[str, Any]:
    """SQL statements per cache-miss request, counted in-process; {} (and a warning) if that fails."""
    specs = [
        {"name": s.key, "query": s.query, "variables": request_body(s, ids)["variables"]}
        for s in SCENARIOS
        if not s.cache
    ]
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "sqlcount.py")],
        input=json.dumps(specs),
        env=env,
        cwd=server_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        print(f"warning: SQL counting failed; SQL/req is n/a:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scenario_row(
    scenario: Scenario,
    measured: Measured,
    ceiling_rps: float,
    all_results: dict[str, Measured],
    sql: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    ratio = measured.load.rps / ceiling_rps
    row: dict[str, Any] = {
        "label": scenario.label,
        "response_cache": scenario.cache,
        **measured.load.to_json(),
        "ratio_to_ceiling": ratio,
        "target_ratio": scenario.target,
        "meets_target": None if scenario.target is None else ratio >= scenario.target,
        "p99_over_p50": measured.load.p99_ms / measured.load.p50_ms,
    }
    if measured.probe is not None:
        row["response_bytes"] = measured.probe.response_bytes
        row["response_headers"] = measured.probe.response_headers
        row["items_returned"] = measured.probe.items
    if scenario.cold_twin is None:
        row["sql_per_request"] = sql.get(scenario.key, {}).get("steady")
        row["sql_first_request"] = sql.get(scenario.key, {}).get("first")
        row["in_process_exec_ms"] = sql.get(scenario.key, {}).get("exec_ms")
        return row
    # Hot: 0 SQL only if the server demonstrably answers from its cache (much faster than a miss).
    cold = all_results.get(scenario.cold_twin)
    speedup = measured.load.rps / cold.load.rps if cold else None
    cached = speedup is not None and speedup >= CACHE_SPEEDUP
    row["speedup_over_cache_miss"] = speedup
    row["served_from_cache"] = cached if speedup is not None else None
    row["sql_per_request"] = 0 if cached else None
    row["sql_on_cache_miss"] = sql.get(scenario.cold_twin, {}).get("steady")
    return row


def tool_versions(wrk: str) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("uvicorn", "starlette", "strawberry-graphql", "tortoise-orm", "uvloop", "httptools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    # wrk -v prints its version and exits non-zero.
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    versions["wrk"] = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"
    return versions


def git_revision() -> str | None:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


# (title, width) of the table's columns; the first is left-aligned.
COLUMNS = [
    ("scenario", 32),
    ("req/s", 9),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("x ceil", 7),
    ("target", 11),
    ("SQL/req", 11),
    ("other CPU", 10),
]


def table_line(cells: list[str]) -> str:
    first, *rest = zip(cells, COLUMNS, strict=True)
    return " ".join([f"{first[0]:<{first[1][1]}}", *(f"{cell:>{width}}" for cell, (_, width) in rest)])


def target_cell(row: dict[str, Any]) -> str:
    if row["target_ratio"] is None:
        return ""
    return f">={row['target_ratio']:.2f} " + ("ok" if row["meets_target"] else "MISS")


def sql_cell(row: dict[str, Any]) -> str:
    cell = fmt(row["sql_per_request"], "d")
    return cell + " (cache)" if row.get("served_from_cache") else cell


def print_table(report: dict[str, Any]) -> None:
    meta, load, ceiling = report["meta"], report["meta"]["load"], report["ceiling"]
    print(
        f"\nLianmall benchmark ({meta['backend']}): wrk -t{load['threads']} -c{load['connections']} "
        f"-d{load['duration_s']:g}s after {load['warmup_s']:g}s warm-up; {meta['pinning']}"
    )
    header = table_line([title for title, _ in COLUMNS])
    print(header)
    print("-" * len(header))
    latency = [f"{ceiling['rps']:.0f}", f"{ceiling['p50_ms']:.2f}", f"{ceiling['p99_ms']:.2f}"]
    other = f"{ceiling['other_cpu_cores']:.2f}"
    print(table_line(["ceiling (bare Starlette)", *latency, "1.00", "", "", other]))
    for row in report["scenarios"].values():
        latency = [f"{row['rps']:.0f}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}"]
        ratio = f"{row['ratio_to_ceiling']:.2f}"
        other = f"{row['other_cpu_cores']:.2f}"
        print(table_line([row["label"], *latency, ratio, target_cell(row), sql_cell(row), other]))
    for key, row in report["scenarios"].items():
        if row["response_cache"] and not row.get("served_from_cache"):
            speedup = fmt(row.get("speedup_over_cache_miss"), ".2f")
            print(
                f"note: {key} not shown to come from the cache (speedup over a miss: {speedup}): SQL/req n/a"
            )
    for row in report["scenarios"].values():
        if row.get("items_returned") is not None and row["items_returned"] < LISTING_PAGE:
            print(f"note: {row['label']} returned only {row['items_returned']} products")
    tails = ", ".join(
        f"{row['label']} {row['p99_over_p50']:.1f}" + ("" if row["p99_over_p50"] <= TAIL_TARGET else " MISS")
        for row in report["scenarios"].values()
    )
    print(f"p99/p50 (target <= {TAIL_TARGET:g}): {tails}")
    misses = [r for r in report["scenarios"].values() if r.get("in_process_exec_ms") is not None]
    if misses:
        costs = ", ".join(f"{r['label']} {r['in_process_exec_ms']:.1f} ms" for r in misses)
        print(f"cache-miss execution in-process (schema.execute, median, unpinned): {costs}")
    rows = [ceiling, *report["scenarios"].values()]
    busy = max(row["other_cpu_cores"] for row in rows)
    if busy > BUSY_WARNING_CORES:
        print(f"note: other processes used up to {busy:.2f} cores during a measurement: numbers disturbed")
    print_sale(report)
    memory = report["memory"]
    print(
        f"worker memory after the run (VmRSS): cache on {memory['cache_on_mb']:.1f} MB, "
        f"cache off {memory['cache_off_mb']:.1f} MB (ceiling {memory['ceiling_mb']:.1f} MB); "
        f"target <= {MEMORY_TARGET_MB:.0f} MB " + ("ok" if memory["meets_target"] else "MISS")
    )


def print_sale(report: dict[str, Any]) -> None:
    rows = report.get("during_sale") or {}
    if not rows:
        return
    print(
        "\nduring sale: the hot product page under the same load while orders are placed on it, over the same"
        " page measured quiet right before; per rate the median of its rounds (all rounds' ratios at the end)"
    )
    print(
        f"{'orders/s asked':>15} {'placed/s':>9} {'order p50':>10} {'order p99':>10} {'quiet req/s':>12} "
        f"{'page req/s':>11} {'page p99':>9} {'sale/quiet':>11}   rounds"
    )
    for rate, row in rows.items():
        orders, page = row["orders"], row["page"]
        ratio = row["sale_quiet_ratio"]
        verdict = ""
        if int(rate) >= 100:
            verdict = f" (>={during_sale.ORDER_TARGET_RATIO} " + (
                "ok)" if ratio >= during_sale.ORDER_TARGET_RATIO else "MISS)"
            )
        rounds = " ".join(f"{r:.2f}" for r in row["round_ratios"])
        print(
            f"{rate:>15} {orders['orders_per_s']:>9.1f} {orders['p50_ms']:>8.1f}ms {orders['p99_ms']:>8.1f}ms "
            f"{row['quiet_page']['rps']:>12.0f} {page['rps']:>11.0f} {page['p99_ms']:>7.2f}ms {ratio:>11.2f}"
            f"{verdict}   {rounds}"
        )
    for rate, row in rows.items():
        for number, sale_round in enumerate(row["rounds"], 1):
            if count := sale_round["orders"]["unanswered"]:
                print(
                    f"note: at {rate} orders/s (round {number}), {count} orders were still unanswered"
                    f" {during_sale.GRACE_SECONDS:g}s after the last was sent"
                )


def main() -> int:
    args = parse_args()
    wrk = loadgen.ensure_wrk()
    server_cpu, wrk_cpu = cpu_pinning(args)
    load = loadgen.LoadSettings(
        args.threads,
        args.connections,
        args.duration,
        args.warmup,
        wrk_cpu,
        quiet_wait_s=args.wait_quiet,
        quiet_cores=BUSY_WARNING_CORES,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lianmall-bench-"))
    try:
        report = run_all(args, wrk, load, server_cpu, workdir)
    finally:
        # Server logs are most useful when a run failed: keep them whatever happened.
        for log in workdir.glob("*.log"):
            shutil.copy(log, args.output.parent / log.name)
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {args.output}")
    missed = [k for k, r in report["scenarios"].items() if r["meets_target"] is False]
    missed += [f"{k} p99/p50" for k, r in report["scenarios"].items() if r["p99_over_p50"] > TAIL_TARGET]
    if not report["memory"]["meets_target"]:
        missed.append("memory")
    missed += [
        f"during sale at {rate} orders/s"
        for rate, row in (report.get("during_sale") or {}).items()
        if int(rate) >= 100 and row["sale_quiet_ratio"] < during_sale.ORDER_TARGET_RATIO
    ]
    return 1 if args.check and missed else 0


def run_all(
    args: argparse.Namespace, wrk: str, load: loadgen.LoadSettings, server_cpu: int | None, workdir: Path
) -> dict[str, Any]:
    """Ceiling, then the cache-on server, then the cache-off server, then the SQL count: one at a time."""
    data_dir = workdir / "data"
    started = time.monotonic()
    background: list[float] = []

    check_background(background, "before the ceiling")
    print("ceiling: bare Starlette endpoint ...", flush=True)
    ceiling, ceiling_rss = measure_ceiling(wrk, load, server_cpu, workdir)

    if args.real:
        reset_real_backends()
        prepare_real_database(server_env(data_dir, real=True, cache=True), args.server_dir)
    check_background(background, "before the cache-on server")
    print(f"lianmall, response cache on (DATA_DIR={data_dir}) ...", flush=True)
    sale: dict[int, during_sale.SaleResult] = {}
    if args.sale_rates:
        # WeChat Pay's far side for the orders (each order includes its prepay, as in production).
        pay = start_pay_standin(args)
    try:
        hot, hot_rss, ids = measure_server(
            True, args, wrk, load, server_cpu, data_dir, workdir, sale if args.sale_rates else None
        )
    finally:
        if args.sale_rates:
            pay.stop()
    if args.real:
        # Start the cold server without the hot one's cache entries in Redis.
        asyncio.run(_flush_bench_redis())
    check_background(background, "before the cache-off server")
    print("lianmall, response cache off ...", flush=True)
    cold, cold_rss, cold_ids = measure_server(False, args, wrk, load, server_cpu, data_dir, workdir)
    if cold_ids != ids:
        print(f"warning: ids differ between the two server runs: {ids} vs {cold_ids}", file=sys.stderr)

    print("counting SQL per request (in-process) ...", flush=True)
    sql = count_sql(server_env(data_dir, args.real, cache=False), cold_ids, args.server_dir)

    all_results = {**hot, **cold}
    save_wrk_output(args.output.parent, {"ceiling": ceiling, **all_results})
    report = build_report(args, load, wrk, server_cpu, ceiling, all_results, sql, ids)
    report["memory"] = memory_report(ceiling_rss, hot_rss, cold_rss)
    report["during_sale"] = {str(rate): result.to_json() for rate, result in sale.items()}
    report["meta"]["background_busy_cores"] = [round(b, 2) for b in background]
    report["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    return report


def start_pay_standin(args: argparse.Namespace) -> Any:
    """The WeChat Pay stand-in of the tests, in this process; the cache-on server is pointed at it."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.wechat_pay_standin import WeChatPayStandIn

    pay = WeChatPayStandIn()
    pay.start()
    args.sale_env = {
        "WECHAT_APPID": pay.appid,
        "WECHAT_MCH_ID": pay.mch_id,
        "WECHAT_PAY_API_KEY": pay.api_key,
        "WECHAT_PAY_API_BASE_URL": pay.base_url,
    }
    return pay


def check_background(samples: list[float], when: str) -> None:
    busy = cpustat.busy_cores()
    samples.append(busy)
    if busy > BUSY_WARNING_CORES:
        print(f"warning: {busy:.2f} cores busy with other work {when}; the numbers will be lower and noisier")


def save_wrk_output(results_dir: Path, measured: dict[str, Measured]) -> None:
    """Keep wrk's own text output next to the JSON, for when a number looks wrong."""
    for key, result in measured.items():
        (results_dir / f"wrk-{key}.txt").write_text(result.load.raw_output)


async def _flush_bench_redis() -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REAL_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def build_report(
    args: argparse.Namespace,
    load: loadgen.LoadSettings,
    wrk: str,
    server_cpu: int | None,
    ceiling: Measured,
    results: dict[str, Measured],
    sql: dict[str, Any],
    ids: dict[str, str],
) -> dict[str, Any]:
    pinning = f"server on CPU {server_cpu}, wrk on CPU {load.cpu}" if server_cpu is not None else "not pinned"
    return {
        "meta": {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_revision": git_revision(),
            "backend": "PostgreSQL + Redis" if args.real else "embedded SQLite + in-process Redis",
            "pinning": pinning,
            "load": {
                "threads": load.threads,
                "connections": load.connections,
                "duration_s": load.duration_s,
                "warmup_s": load.warmup_s,
            },
            "uvicorn_flags": UVICORN_FLAGS + fast_io_flags(),
            "versions": tool_versions(wrk),
            "ids": ids,
            "cache_speedup_threshold": CACHE_SPEEDUP,
        },
        "ceiling": ceiling.load.to_json(),
        "scenarios": {
            s.key: scenario_row(s, results[s.key], ceiling.load.rps, results, sql)
            for s in SCENARIOS
            if s.key in results
        },
    }


def memory_report(ceiling_kib: int, hot_kib: int, cold_kib: int) -> dict[str, Any]:
    worst_mb = max(hot_kib, cold_kib) / 1024
    return {
        "ceiling_mb": ceiling_kib / 1024,
        "cache_on_mb": hot_kib / 1024,
        "cache_off_mb": cold_kib / 1024,
        "target_mb": MEMORY_TARGET_MB,
        "meets_target": worst_mb <= MEMORY_TARGET_MB,
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (loadgen.LoadError, servers.ServerError) as failure:
        print(f"\nBENCHMARK FAILED: {failure}", file=sys.stderr)
        sys.exit(2)

"""The live room's API calls in-process: `python bench/live_api_cpu.py` (see bench/README.md, "Live API calls").

What the three calls of bench/live_fanout.py's load cost the worker, free of the fan-out: a staff allotment
change (liveRoomProductUpdate), a staff pin (liveRoomPin) and a member's comment (liveCommentPost, with its real
msg_sec_check to the WeChat stand-in, which runs in a child process so its CPU is not counted), each sent N times
one at a time through the ASGI app itself (no socket, no uvicorn), in a LIVE room with no subscribers. Reports
per kind: CPU ms per call (time.process_time of this process, worker threads included; and each call's own
median), wall ms, SQL statements and Redis commands of one call. `--profile PREFIX` writes a cProfile of each
kind's timed runs (the event loop thread's CPU) to PREFIX.<kind>.prof.

PostgreSQL by default (`postgres://postgres@127.0.0.1:5432/test_h2`, Redis db 2, or DATABASE_URL / REDIS_URL
when set); `--seed` drops the database's public schema, migrates and seeds it, and empties the Redis db first.
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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test_h2"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/2"


@contextmanager
def count_redis() -> Iterator[list[str]]:
    """Redis round trips made meanwhile (a pipeline or a script is one), by their first command's name."""
    from redis.asyncio.client import Pipeline, Redis

    seen: list[str] = []
    command, pipeline = Redis.execute_command, Pipeline.execute

    async def counted_command(self: Any, *args: Any, **options: Any) -> Any:
        seen.append(str(args[0]))
        return await command(self, *args, **options)

    async def counted_pipeline(self: Any, *args: Any, **options: Any) -> Any:
        seen.append("pipeline:" + ",".join(str(c[0][0]) for c in self.command_stack))
        return await pipeline(self, *args, **options)

    Redis.execute_command, Pipeline.execute = counted_command, counted_pipeline  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Redis.execute_command, Pipeline.execute = command, pipeline  # type: ignore[method-assign]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300, help="calls timed per kind")
    parser.add_argument("--members", type=int, default=100, help="commenters taking turns (5 per 10 s each)")
    parser.add_argument("--seed", action="store_true", help="reset, migrate and seed the database first")
    parser.add_argument("--profile", help="cProfile output prefix of the timed runs")
    parser.add_argument("--statements", action="store_true", help="print the SQL and Redis of one call")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    from live_fanout import COMMENT, PIN, UPDATE
    from place_order_cpu import call

    from infra.db import close_db, init_db
    from infra.gc_tuning import tune_for_serving
    from infra.query_counter import count_queries
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from main import create_app

    ctx = await _room(args.members)
    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    app = create_app(settings, manage_resources=False)
    tune_for_serving()
    rows = []
    try:
        counter = {"n": 0}

        def stock(i: int) -> tuple[str, dict[str, Any], str]:
            return UPDATE, {"id": ctx["product"], "allotment": 100 - i % 90}, ctx["staff"]

        def pin(i: int) -> tuple[str, dict[str, Any], str]:
            return PIN, {"roomId": ctx["room"], "pid": ctx["product"]}, ctx["staff"]

        def comment(i: int) -> tuple[str, dict[str, Any], str]:
            # Members take turns so that none passes 5 comments per 10 s.
            counter["n"] += 1
            members = ctx["members"]
            return COMMENT, {"roomId": ctx["room"], "text": f"好看 {i}"}, members[counter["n"] % len(members)]

        kinds: dict[str, Callable[[int], tuple[str, dict[str, Any], str]]] = {
            "stock": stock,
            "pin": pin,
            "comment": comment,
        }
        for kind, make in kinds.items():
            if kind == "comment" and args.runs + 20 > args.members * 5:
                raise SystemExit(f"--members {args.members} cannot post {args.runs + 20} comments in 10 s")

            async def one(
                i: int, make: Callable[[int], tuple[str, dict[str, Any], str]] = make, kind: str = kind
            ) -> None:
                query, variables, token = make(i)
                body = json.dumps({"query": query, "variables": variables}).encode()
                status, raw = await call(app, body, token)
                answer = json.loads(raw)
                payload = next(iter((answer.get("data") or {}).values()), None) or {}
                if status != 200 or answer.get("errors") or payload.get("errors"):
                    raise SystemExit(f"{kind} failed: {status} {raw[:500]!r}")

            for i in range(10):  # warm the per-process caches and the pool
                await one(i)
            profiler = cProfile.Profile(time.thread_time) if args.profile else None
            walls, cpus = [], []
            cpu_started, main_started = time.process_time(), time.thread_time()
            if profiler:
                profiler.enable()
            for i in range(args.runs):
                started, started_cpu = time.perf_counter(), time.process_time()
                await one(11 + i)
                walls.append((time.perf_counter() - started) * 1000)
                cpus.append((time.process_time() - started_cpu) * 1000)
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{args.profile}.{kind}.prof")
            # One more, counted: a member who commented a moment ago, as in a busy room.
            with count_queries() as counted, count_redis() as redis_calls:
                await one(11 + args.runs)
            rows.append(
                {
                    "kind": kind,
                    "cpu_ms": (time.process_time() - cpu_started) * 1000 / args.runs,
                    "loop_cpu_ms": (time.thread_time() - main_started) * 1000 / args.runs,
                    "cpu_p50_ms": statistics.median(cpus),
                    "wall_p50_ms": statistics.median(walls),
                    "sql": counted.statements,
                    "redis": list(redis_calls),
                }
            )
    finally:
        await stop_runtime()
        await close_db()
    print(
        f"live API calls in-process, {args.runs} sequential calls per kind ({settings.database_url}, {args.loop})"
    )
    print("kind      CPU ms/call  (loop thread)  own p50  wall p50  SQL  Redis")
    for row in rows:
        print(
            f"{row['kind']:<9} {row['cpu_ms']:>11.2f}  {row['loop_cpu_ms']:>13.2f}  {row['cpu_p50_ms']:>7.2f}"
            f"  {row['wall_p50_ms']:>8.2f}  {len(row['sql']):>3}  {len(row['redis']):>5}"
        )
    if args.statements:
        for row in rows:
            print(f"--- {row['kind']}")
            for statement in row["sql"]:
                print("   SQL  ", statement[:240])
            for command in row["redis"]:
                print("   Redis", command)


async def _room(members: int) -> dict[str, Any]:
    """A LIVE room selling one SKU, a staff token and member tokens (bench/live_fanout.py's setup)."""
    from live_fanout import setup

    return await setup(dict(os.environ), members)


def main() -> None:
    args = parse_args()
    from place_order_cpu import in_process_environment

    in_process_environment(
        "lianmall-live-api-", seed=args.seed, database_url=DEFAULT_DATABASE_URL, redis_url=DEFAULT_REDIS_URL
    )
    if args.seed:
        # Numbers start again with the schema: a session verdict left in Redis would speak for a new session.
        subprocess.run(
            ["redis-cli", "-u", os.environ["REDIS_URL"], "flushdb"], check=True, stdout=subprocess.DEVNULL
        )
    ctx = multiprocessing.get_context("spawn")
    ready_here, ready_there = ctx.Pipe()
    stop = ctx.Event()
    from live_fanout import serve_wechat

    wechat = ctx.Process(target=serve_wechat, args=(ready_there, stop), daemon=True)
    wechat.start()
    appid, secret, base_url = ready_here.recv()
    os.environ.update({"WECHAT_APPID": appid, "WECHAT_SECRET": secret, "WECHAT_API_BASE_URL": base_url})
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(run(args))
    finally:
        stop.set()
        wechat.join(5)


if __name__ == "__main__":
    main()

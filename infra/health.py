"""`GET /healthz`: what a load balancer and an operator need to know about this process's dependencies.

- `database`: a `SELECT 1` within HEALTH_TIMEOUT_SECONDS. Without it nothing works: status `down`, HTTP 503, so
  a load balancer takes the process out of rotation.
- `redis`: a PING within REDIS_TIMEOUT_SECONDS; `eventBus`: whether the pub/sub listener holds its
  subscription. Without them the shop still sells (see the README, "When Redis or PostgreSQL is down"):
  status `degraded`, HTTP 200, so the process stays in rotation.

Each dependency is reported as {"status": "ok" | "unreachable" | "disconnected" | "embedded", "detail": ...}.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from tortoise import connections

from infra.redis import REDIS_ERRORS, health_of
from infra.runtime import current_runtime

HEALTH_TIMEOUT_SECONDS = 2.0


async def _database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # any failure to answer is "unreachable"; the detail says which
        return {"status": "unreachable", "detail": _detail(exc)}
    return {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 1)}


async def _redis() -> dict[str, Any]:
    runtime = current_runtime()
    if runtime.settings.embedded_redis:
        return {"status": "embedded"}
    health = health_of(runtime.redis)
    started = time.monotonic()
    try:
        async with asyncio.timeout(runtime.settings.redis_timeout_seconds):
            await runtime.redis.ping()
    except (*REDIS_ERRORS, TimeoutError) as exc:
        report: dict[str, Any] = {"status": "unreachable", "detail": _detail(exc)}
        if health is not None and health.down_since is not None:
            report["downSeconds"] = round(time.monotonic() - health.down_since, 1)
        return report
    return {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 1)}


def _bus() -> dict[str, Any]:
    bus = current_runtime().bus
    return {
        "status": "ok" if bus.connected else "disconnected",
        "reconnects": bus.reconnects,
        "subscribers": bus.subscriber_count,
    }


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def health_report() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 `ok` or `degraded`, 503 `down` when the database does not answer."""
    database, redis = await asyncio.gather(_database(), _redis())
    checks = {"database": database, "redis": redis, "eventBus": _bus()}
    if database["status"] != "ok":
        return 503, {"status": "down", "checks": checks}
    healthy = redis["status"] in ("ok", "embedded") and checks["eventBus"]["status"] == "ok"
    return 200, {"status": "ok" if healthy else "degraded", "checks": checks}


async def healthz(_: Request) -> Response:
    status, body = await health_report()
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )

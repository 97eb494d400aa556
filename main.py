"""Lianmall: the ASGI app (`main:app`) and, run as a script, the operator's CLI.

python main.py serve [--host H] [--port P] [--workers N]
python main.py migrate | seed | export-schema [--output F] | create-staff NAME [--role ROLE]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from infra.body_limit import BodySizeLimit
from infra.cors import BrowserOriginsCORS
from infra.db import close_db, init_db, migrate_db
from infra.direct_sockets import DirectSockets
from infra.gc_tuning import tune_for_serving
from infra.health import healthz
from infra.log_redaction import install_log_redaction
from infra.runtime import EmbeddedModeLocked, lock_embedded_mode, start_runtime, stop_runtime
from infra.settings import Settings, get_settings

log = logging.getLogger("lianmall")


def create_app(settings: Settings | None = None, *, manage_resources: bool = True) -> Starlette:
    """The Starlette app. With `manage_resources=False` the caller (a test) owns the DB and runtime."""
    from infra.static_assets import STATIC_PREFIX, StaticAssets
    from infra.wechat_sandbox.routes import sandbox_routes
    from schema import content_http, live_page, payments_http
    from schema.internal_error import internal_error
    from schema.root import schema
    from schema.unavailable import DEPENDENCY_DOWN_HANDLERS
    from schema.view import GraphQLView
    from services.content.storage import LOCAL_ROUTE

    settings = settings or get_settings()
    # Here, not in main(): uvicorn imports the app in each worker process.
    install_log_redaction()
    view = GraphQLView(schema, settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not manage_resources:
            yield
            return
        if settings.wechat_sandbox_refusal:
            raise RuntimeError(settings.wechat_sandbox_refusal)
        lock_embedded_mode(settings)
        await init_db(settings)
        await start_runtime(settings)
        from services.orders.sweeper import start_sweeper, stop_sweeper

        sweeper = start_sweeper()
        # Last: everything start-up allocated is frozen out of the garbage collector's walk (infra/gc_tuning.py).
        tune_for_serving()
        try:
            yield
        finally:
            await stop_sweeper(sweeper)
            await stop_runtime()
            await close_db()

    # The GraphQL view checks its own body size (no extra layer on the hot path); uploads have their own limit
    # (images are larger); WeChat Pay's notifications stop reading at their own, smaller MAX_BODY and answer
    # WeChat's FAIL XML (a 413 in JSON is not an answer WeChat reads); the other bodies pass this.
    limit = [Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)]
    routes: list[BaseRoute] = [
        Route("/graphql", view, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", view),
        Route("/healthz", healthz),
        Route("/payments/wechat/notify", payments_http.payment_notify, methods=["POST"]),
        Route("/payments/wechat/refund-notify", payments_http.refund_notify, methods=["POST"]),
        Route("/uploads", content_http.upload, methods=["POST"]),
        Route("/wechat/message", content_http.wechat_message, methods=["GET", "POST"], middleware=limit),
        Route("/h5/live/{room_id}", live_page.live_page),
        Mount(STATIC_PREFIX, app=StaticAssets(), name="static"),
        *sandbox_routes(settings),
    ]
    if not settings.s3_bucket:
        # The embedded default keeps uploads in a local folder and serves them itself.
        routes.append(
            Mount(LOCAL_ROUTE, app=StaticFiles(directory=settings.resolved_upload_dir, check_dir=False))
        )
    # A socket on /graphql goes straight to the view, past the middleware and router (infra/direct_sockets.py).
    return DirectSockets(
        sockets={"/graphql": view},
        trusted_proxies=settings.forwarded_allow_ips,
        debug=False,
        routes=routes,
        middleware=edge_middleware(settings),
        lifespan=lifespan,
        exception_handlers={**DEPENDENCY_DOWN_HANDLERS, Exception: internal_error},
    )


def edge_middleware(settings: Settings) -> list[Middleware]:
    """The client address behind trusted proxies only, however the app is served (see infra/client_ip.py); CORS,
    only when browser origins are configured: none means no CORS headers and nothing on the hot path."""
    proxies = Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    if not settings.browser_origins:
        return [proxies]
    # Bearer tokens, not cookies: no credentials mode, and any request header may be sent.
    return [
        proxies,
        Middleware(
            BrowserOriginsCORS,
            allow_origins=settings.browser_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            max_age=600,
        ),
    ]


app = create_app()


# -- CLI ---------------------------------------------------------------------------------------------------


async def _with_db(settings: Settings, work: object) -> object:
    await init_db(settings)
    try:
        return await work  # type: ignore[misc]
    finally:
        await close_db()


async def _migrate(settings: Settings) -> None:
    await migrate_db(settings)
    await close_db()


async def _seed(settings: Settings) -> dict[str, int]:
    from demo.seed import seed_demo_shop
    from infra.redis import create_redis, set_redis

    # The seed writes only to the database; a private Redis stand-in satisfies any code path that asks.
    set_redis(create_redis(Settings(DATA_DIR=str(settings.data_dir))))
    await init_db(settings)
    try:
        return await seed_demo_shop()
    finally:
        await close_db()


async def _create_staff(settings: Settings, name: str, role: str) -> str:
    from models import StaffRole
    from services.access.staff import create_staff

    await init_db(settings)
    try:
        _, token = await create_staff(name, StaffRole(role))
        return token
    finally:
        await close_db()


def _local_base_url(host: str, port: int) -> str:
    """Where this server answers itself: a wildcard bind is reached on the loopback address."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if settings.wechat_sandbox_refusal:
        print(f"error: {settings.wechat_sandbox_refusal}", file=sys.stderr)
        return 2
    if settings.embedded_database and "public_base_url" not in settings.model_fields_set:
        # WeChat's notifications (and the sandbox's calls) go to PUBLIC_BASE_URL: on a developer's machine
        # that is wherever this server listens. The app is imported again by uvicorn and reads it then.
        os.environ["PUBLIC_BASE_URL"] = _local_base_url(args.host, args.port)
        get_settings.cache_clear()
        settings = get_settings()
    workers = args.workers or int(os.environ.get("WEB_CONCURRENCY", "1"))
    if workers > 1 and settings.embedded_redis:
        print(
            f"error: {workers} worker processes need a shared Redis. The embedded default keeps cache, stock "
            "events and subscriptions inside one process; set REDIS_URL (and DATABASE_URL) or use --workers 1.",
            file=sys.stderr,
        )
        return 2
    if not settings.embedded_database and not settings.secret_key:
        print(
            "warning: SECRET_KEY is not set; this host generated its own in DATA_DIR. Servers on other hosts "
            "will not accept its member tokens: set the same SECRET_KEY everywhere.",
            file=sys.stderr,
        )
    # Before touching the embedded database: a second server on the same data folder must not migrate or
    # seed it, just say why it cannot run.
    lock_embedded_mode(settings)
    if settings.embedded_database:
        asyncio.run(_migrate(settings))
        counts = asyncio.run(_seed(settings))
        print(f"demo shop ready: {counts.get('products', 0)} products")
    print(f"GraphQL at http://{args.host}:{args.port}/graphql")
    if settings.wechat_sandbox:
        print(
            "WeChat sandbox on: any login code logs in, pay with the sandboxPay mutation "
            "(README: A shopper's day in GraphiQL). Set WeChat credentials to use the real WeChat."
        )
    uvicorn.run("main:app", host=args.host, port=args.port, workers=workers, **uvicorn_options(settings))
    return 0


def uvicorn_options(settings: Settings) -> dict[str, object]:
    """How `serve` runs uvicorn. Its proxy handling trusts the same FORWARDED_ALLOW_IPS as the app's own.
    WebSockets: uvicorn's sans-I/O websockets protocol offering our frame writer, without permessage-deflate
    (infra/websocket_frames.py says why)."""
    from infra.websocket_frames import uvicorn_websocket_options

    return {
        **uvicorn_websocket_options(),
        "log_level": "warning" if not settings.debug else "info",
        "access_log": settings.access_log,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def cmd_export_schema(args: argparse.Namespace) -> int:
    from schema.root import schema

    sdl = schema.as_str() + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python main.py", description="Lianmall operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (embedded default: migrates and seeds first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=0, help="worker processes (needs REDIS_URL if > 1)")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("seed", help="load the demo shop (idempotent)")
    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    staff = commands.add_parser("create-staff", help="create a staff account; prints its token last")
    staff.add_argument("name")
    staff.add_argument(
        "--role", default="ADMIN", choices=["ADMIN", "OPERATOR", "CUSTOMER_SERVICE", "WAREHOUSE"]
    )
    args = parser.parse_args(argv)

    settings = get_settings()
    install_log_redaction()
    logging.basicConfig(level=logging.INFO if settings.debug else logging.WARNING)
    try:
        match args.command:
            case "serve":
                return cmd_serve(args, settings)
            case "migrate":
                asyncio.run(_migrate(settings))
                print("migrations applied")
            case "seed":
                asyncio.run(_migrate(settings)) if settings.embedded_database else None
                counts = asyncio.run(_seed(settings))
                print("demo shop: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            case "export-schema":
                return cmd_export_schema(args)
            case "create-staff":
                token = asyncio.run(_create_staff(settings, args.name, args.role))
                print(f"staff {args.name!r} ({args.role}) created; bearer token:")
                print(token)
    except EmbeddedModeLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live-room fan-out benchmark: `python bench/live_fanout.py` (see bench/README.md).

PostgreSQL (database lianmall_bench_live, dropped, recreated, migrated and seeded) and Redis (db 13 unless
--redis-url, flushed). WeChat's content check is answered by the tests' local stand-in. Setup, through the
project's code: a LIVE room selling one SKU, a staff token and --members members with tokens.

Then --processes server processes (`main.py serve`, one worker each; 1 or 2, behind the same Redis) and
--subscribers WebSocket subscribers of `liveRoomEvents` on that room, spread evenly over the processes and held
by --client-procs client processes:

1. idle: the server processes' RSS before and after the subscribers connected: memory per idle subscriber;
2. load, for --seconds: staff change the room product's allotment (a LiveStockChanged) every 100 ms and pin it
   again (ProductPinned) every second, through process A's API; members post --comments-per-second comments
   through A, each call on its tick whether or not the last one answered. Every event carries its publication
   time (`at`); each client notes when the event arrived:
   delivery latency p50/p99 per kind, and, with two processes, separately for subscribers on B (cross-process).

Prints a summary and writes bench/results/live_fanout.json. Targets: p99 < 200 ms for stock and pin events (also
cross-process), <= 20 KB per idle subscriber. Small counts while developing: --subscribers 200 --seconds 5.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cpustat
import servers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(REPO_ROOT))

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
EVENTS = """subscription($roomId: ID!) { liveRoomEvents(roomId: $roomId, batchComments: true) {
  __typename ... on LiveEvent { seq at } ... on CommentsPosted { comments { at } } } }"""
UPDATE = """mutation($id: ID!, $allotment: Int!) { liveRoomProductUpdate(id: $id, input: {allotment: $allotment}) {
  errors { code } } }"""
PIN = """mutation($roomId: ID!, $pid: ID) { liveRoomPin(roomId: $roomId, roomProductId: $pid) { errors { code } } }"""
COMMENT = """mutation($roomId: ID!, $text: String!) { liveCommentPost(roomId: $roomId, text: $text) { errors { code } } }"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--client-procs", type=int, default=4, help="client processes holding the sockets")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--comments-per-second", type=float, default=50.0)
    parser.add_argument("--members", type=int, default=300, help="commenters (5 comments per 10 s each)")
    parser.add_argument(
        "--sample",
        type=int,
        default=10,
        help="latencies are measured on every Nth subscriber; the others only count their frames (a client "
        "that parsed every frame of 10,000 sockets needed more CPU than the server)",
    )
    parser.add_argument(
        "--pin",
        choices=("cores", "none"),
        default="cores",
        help="cores: server n pinned to CPU n %% 2 with taskset (as run.py pins); none: the kernel places them",
    )
    parser.add_argument("--database", default="lianmall_bench_live")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    return parser.parse_args()


# --- setup, in this process through the project's code ------------------------------------------------------


def run(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


async def setup(env: dict[str, str], members: int) -> dict[str, Any]:
    os.environ.update(env)
    from infra.clock import now
    from infra.db import close_db, init_db
    from infra.runtime import start_runtime, stop_runtime
    from infra.settings import get_settings
    from models import (
        LiveRoom,
        LiveRoomProduct,
        LiveRoomStatus,
        Member,
        Product,
        ProductStatus,
        Sku,
        StaffRole,
    )
    from schema.node import encode_id
    from services.access.staff import create_staff
    from services.members.tokens import issue_tokens

    get_settings.cache_clear()
    settings = get_settings()
    await init_db(settings)
    await start_runtime(settings)
    try:
        sku = await Sku.filter(product__status=ProductStatus.ON_SALE, stock__gte=100).order_by("id").first()
        assert sku is not None and await Product.exists(id=sku.product_id)
        start = now()
        room = await LiveRoom.create(
            title="压测直播间",
            anchor_name="主播",
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=6),
            status=LiveRoomStatus.LIVE,
            started_at=start,
        )
        item = await LiveRoomProduct.create(
            room_id=room.id, product_id=sku.product_id, sku_id=sku.id, live_price=990, allotment=100
        )
        _, staff = await create_staff(f"bench-{secrets.token_hex(3)}", StaffRole.OPERATOR)
        tokens = []
        for i in range(members):
            member = await Member.create(
                openid=f"o_bench_{i}_{secrets.token_hex(4)}",
                invite_code=secrets.token_hex(5).upper(),
                nickname=f"观众{i}",
            )
            tokens.append((await issue_tokens(member)).access_token)
        return {
            "room": encode_id("LiveRoom", room.id),
            "product": encode_id("LiveRoomProduct", item.id),
            "staff": staff,
            "members": tokens,
        }
    finally:
        await stop_runtime()
        await close_db()


# --- clients ----------------------------------------------------------------------------------------------------


class _Subscriber(asyncio.Protocol):
    """One graphql-transport-ws subscriber on a raw socket: a client light enough that 10,000 of them in a few
    processes measure the server, not the Python WebSocket library (the handshake and frames by hand; client
    frames carry a zero mask key, which servers accept)."""

    def __init__(
        self,
        path: str,
        host: str,
        room: str,
        server: int,
        latencies: dict[str, list[float]],
        frames: dict[str, int],
        sampled: bool,
    ) -> None:
        self.path, self.host, self.room, self.server = path, host, room, server
        self.latencies, self.frames, self.sampled = latencies, frames, sampled
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def send(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        assert self.transport is not None
        self.transport.write(header + b"\0\0\0\0" + payload)

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(bytes(buffer[:200]).decode(errors="replace")))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.send(1, b'{"type":"connection_init","payload":{}}')
            payload = {"query": EVENTS, "variables": {"roomId": self.room}}
            import orjson

            # A UUID per subscription, as the graphql-ws client (the H5 page's) makes them: every socket's frames
            # differ by their id, as in production.
            operation = str(uuid.uuid4())
            self.send(1, orjson.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        # Frames are walked by offset and the consumed bytes dropped once: an unsampled subscriber only counts
        # its frames (no copy, no JSON), so the clients spend their CPU reading sockets, not parsing.
        size, pos = len(buffer), 0
        while size - pos >= 2:
            opcode, length, start = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F, pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), pos + 10
            if size < start + length:
                break
            pos = start + length
            if opcode == 1:
                if self.sampled or not self.opened.done():
                    self.message(bytes(buffer[start:pos]), arrived)
                else:
                    self.frames["all"] += 1
            elif opcode == 9:
                self.send(10, bytes(buffer[start:pos]))
        if pos:
            del buffer[:pos]

    def message(self, payload: bytes, arrived: float) -> None:
        import orjson

        message = orjson.loads(payload)
        kind = message.get("type")
        if kind == "connection_ack":
            if not self.opened.done():
                self.opened.set_result(None)
            return
        if kind != "next":
            return
        event = message["payload"]["data"]["liveRoomEvents"]
        self.frames["all"] += 1
        self.frames[event["__typename"]] = self.frames.get(event["__typename"], 0) + 1
        if event["__typename"] == "CommentsPosted":
            values = self.latencies.setdefault(f"CommentPosted(batched)@{self.server}", [])
            for comment in event["comments"]:
                values.append(arrived - datetime.fromisoformat(comment["at"]).timestamp())
            return
        sent = datetime.fromisoformat(event["at"]).timestamp()
        self.latencies.setdefault(f"{event['__typename']}@{self.server}", []).append(arrived - sent)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed"))


def client_main(
    urls: list[str],
    room: str,
    count: int,
    offset: int,
    sample: int,
    ready: Any,
    go: Any,
    done: Any,
    results: Any,
) -> None:
    """Hold `count` subscribers (spread over `urls` by their global index); report arrival latencies per kind
    and per server (index into `urls`)."""
    from urllib.parse import urlsplit

    latencies: dict[str, list[float]] = {}
    frames: dict[str, int] = {"all": 0}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handshakes = asyncio.Semaphore(50)
        transports = []

        async def one(index: int) -> None:
            server = index % len(urls)
            parts = urlsplit(urls[server])
            sampled = (index // len(urls)) % sample == 0  # every Nth subscriber of each server
            async with handshakes:
                transport, protocol = await loop.create_connection(
                    lambda: _Subscriber(parts.path, parts.netloc, room, server, latencies, frames, sampled),
                    parts.hostname,
                    parts.port,
                )
                transports.append(transport)
                await asyncio.wait_for(protocol.opened, 60)

        await asyncio.gather(*(one(offset + i) for i in range(count)))
        ready.release()
        await loop.run_in_executor(None, go.wait)
        latencies.clear()  # only what arrives during the load
        frames.clear()
        frames["all"] = 0
        cpu = time.process_time()
        await loop.run_in_executor(None, done.wait)
        results.put((latencies, frames, time.process_time() - cpu))
        for transport in transports:
            transport.close()

    # uvloop, as the server runs: the clients' share of the two cores goes to reading sockets, not to asyncio's
    # pure-Python selector loop, so the server has more of the machine to itself.
    import uvloop

    uvloop.run(main())


# --- the load ---------------------------------------------------------------------------------------------------


async def load(
    url: str, ctx: dict[str, Any], seconds: float, comments_per_second: float
) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Staff and members calling process A's API on a fixed schedule for `seconds`: every call starts on its
    tick whether or not the one before has answered (a slow server faces the scenario's rate, not a lower one).
    Returns the calls started per kind (and failed) and each kind's call durations."""
    import httpx

    sent = {"stock": 0, "pin": 0, "comment": 0, "failed": 0}
    durations: dict[str, list[float]] = {"stock": [], "pin": [], "comment": []}
    # The same for the calls started in the second half of the load: the steady state, without the start.
    late: dict[str, list[float]] = {"stock": [], "pin": [], "comment": []}
    load_began = time.monotonic()
    members = ctx["members"]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

        async def call(kind: str, query: str, variables: dict[str, Any], token: str) -> None:
            # A slow or failed call is counted, not fatal: the load keeps its pace.
            started = time.monotonic()
            try:
                response = await http.post(
                    url,
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code != 200 or "errors" in response.json():
                    sent["failed"] += 1
            except httpx.HTTPError:
                sent["failed"] += 1
            durations[kind].append(time.monotonic() - started)
            if started - load_began >= seconds / 2:
                late[kind].append(time.monotonic() - started)

        async def every(period: float, start_call: Any) -> None:
            begin = time.monotonic()
            pending: set[asyncio.Task[None]] = set()
            tick = 0
            while (due := begin + tick * period) < begin + seconds:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                task = asyncio.create_task(start_call(tick))
                pending.add(task)
                task.add_done_callback(pending.discard)
                tick += 1
            await asyncio.gather(*pending, return_exceptions=True)

        async def stock(tick: int) -> None:
            sent["stock"] += 1
            allotment = 100 - tick % 90
            await call("stock", UPDATE, {"id": ctx["product"], "allotment": allotment}, ctx["staff"])

        async def pin(tick: int) -> None:
            sent["pin"] += 1
            await call("pin", PIN, {"roomId": ctx["room"], "pid": ctx["product"]}, ctx["staff"])

        async def comment(tick: int) -> None:
            sent["comment"] += 1
            token = members[tick % len(members)]
            await call("comment", COMMENT, {"roomId": ctx["room"], "text": f"好看 {tick}"}, token)

        jobs = [every(0.1, stock), every(1.0, pin)]
        if comments_per_second > 0:
            jobs.append(every(1.0 / comments_per_second, comment))
        await asyncio.gather(*jobs)
    durations.update({f"{kind} (second half)": values for kind, values in late.items()})
    return sent, durations


def serve_wechat(ready: Any, stop: Any) -> None:
    """The WeChat stand-in of the tests in this (child) process until `stop` is set; its settings go to `ready`."""
    from tests.wechat_standin import WeChatStandIn

    wechat = WeChatStandIn()
    wechat.start()
    ready.send((wechat.appid, wechat.secret, wechat.base_url))
    stop.wait()
    wechat.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    args = parse_args()
    # WeChat's stand-in in a process of its own (as bench/live_api_cpu.py runs it): as a thread of this one it
    # shared the GIL with the load's event loop, and its CPU and run-queue wait could not be told from the load's.
    spawn = multiprocessing.get_context("spawn")
    wechat_here, wechat_there = spawn.Pipe()
    wechat_stop = spawn.Event()
    wechat = spawn.Process(target=serve_wechat, args=(wechat_there, wechat_stop), daemon=True)
    wechat.start()
    wechat_appid, wechat_secret, wechat_url = wechat_here.recv()
    data_dir = Path(tempfile.mkdtemp(prefix="lianmall-bench-live-"))
    database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATA_DIR")},
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": secrets.token_hex(32),
        "WECHAT_APPID": wechat_appid,
        "WECHAT_SECRET": wechat_secret,
        "WECHAT_API_BASE_URL": wechat_url,
        "WS_MAX_CONNECTIONS_PER_IP": str(args.subscribers + 100),
        "COST_BUCKET_SIZE": "0",
        "DEBUG": "false",
    }
    subprocess.run(["psql", ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    subprocess.run(["psql", ADMIN_URL, "-qc", f"CREATE DATABASE {args.database}"], check=True)
    python = sys.executable
    run([python, "main.py", "migrate"], env)
    run([python, "main.py", "seed"], env)
    subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], check=True, stdout=subprocess.DEVNULL)
    ctx = asyncio.run(setup(env, args.members))

    RESULTS_DIR.mkdir(exist_ok=True)
    running: list[servers.RunningServer] = []
    clients: list[multiprocessing.Process] = []
    try:
        for n in range(args.processes):
            port = servers.free_port()
            command = [python, "main.py", "serve", "--port", str(port)]
            server = servers.start(
                f"server-{n}",
                servers.pinned(command, n % 2 if args.pin == "cores" else None),
                port,
                env,
                REPO_ROOT,
                RESULTS_DIR / f"live_fanout_{n}.log",
            )
            running.append(server)
        for server in running:
            servers.wait_ready(server, 120)
        time.sleep(1.0)
        rss_before = [servers.worker_rss_kib(s)[0] for s in running]

        urls = [f"ws://127.0.0.1:{s.port}/graphql" for s in running]
        ready, results = multiprocessing.Semaphore(0), multiprocessing.Queue()
        go, done = multiprocessing.Event(), multiprocessing.Event()
        per_proc = [
            args.subscribers // args.client_procs + (i < args.subscribers % args.client_procs)
            for i in range(args.client_procs)
        ]
        offset = 0
        for count in per_proc:
            process = multiprocessing.Process(
                target=client_main,
                args=(
                    urls,
                    ctx["room"],
                    count,
                    offset,
                    args.sample,
                    ready,
                    go,
                    done,
                    results,
                ),
            )
            process.start()
            clients.append(process)
            offset += count
        for _ in clients:
            if not ready.acquire(timeout=300):
                raise RuntimeError("the clients did not connect their subscribers within 300 s")
        time.sleep(3.0)  # idle: let the servers settle
        rss_idle = [servers.worker_rss_kib(s)[0] for s in running]
        idle_kib = sum(rss_idle) - sum(rss_before)

        pids = [servers.serving_pid(s) for s in running]
        go.set()
        time.sleep(0.5)
        cpu_before = [cpustat.process_cpu_s(pid) for pid in pids]
        watched = {
            **{f"server-{n}": pid for n, pid in enumerate(pids)},
            **{f"client-{n}": c.pid for n, c in enumerate(clients) if c.pid is not None},
            "load (this process)": os.getpid(),
            "wechat stand-in": wechat.pid or 0,
        }
        sched_before = {name: cpustat.sched_s(pid) for name, pid in watched.items()}
        machine_before, wall_before = cpustat.machine_busy_s(), time.monotonic()
        machine_all_before = cpustat.machine_all_busy_s()
        sent, durations = asyncio.run(load(running[0].url, ctx, args.seconds, args.comments_per_second))
        time.sleep(1.0)  # the last events arrive
        server_cpu_s = [
            round(cpustat.process_cpu_s(pid) - b, 2) for pid, b in zip(pids, cpu_before, strict=True)
        ]
        wall = time.monotonic() - wall_before
        machine_cores_busy = (cpustat.machine_busy_s() - machine_before) / wall
        machine_cores_busy_all = (cpustat.machine_all_busy_s() - machine_all_before) / wall
        # Run and run-queue wait seconds per process over the load: how long each had work but no core.
        sched = {}
        for name, pid in watched.items():
            (ran, waited), (ran0, waited0) = cpustat.sched_s(pid), sched_before[name]
            sched[name] = {"run_s": round(ran - ran0, 2), "wait_s": round(waited - waited0, 2)}
        done.set()
        merged: dict[str, list[float]] = {}
        frames: dict[str, int] = {}
        client_cpu_s = 0.0
        for _ in clients:
            latencies, counted, cpu = results.get(timeout=120)
            for kind, values in latencies.items():
                merged.setdefault(kind, []).extend(values)
            for kind, count in counted.items():
                frames[kind] = frames.get(kind, 0) + count
            client_cpu_s += cpu
        for process in clients:
            process.join(timeout=30)
    finally:
        for process in clients:
            if process.is_alive():
                process.kill()
        for server in running:
            servers.stop(server)
        wechat_stop.set()
        wechat.join(5)

    rows = {}
    for kind, values in sorted(merged.items()):
        rows[kind] = {
            "deliveries": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        }
    sent_frames = frames.get("all", 0)
    summary = {
        "subscribers": args.subscribers,
        "processes": args.processes,
        "seconds": args.seconds,
        "latency_sampled_every": args.sample,
        "sent": sent,
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "kib_per_idle_subscriber": round(idle_kib / max(1, args.subscribers), 1),
        "frames_received": frames,
        "server_cpu_s_during_load": server_cpu_s,
        "server_cpu_us_per_frame": round(sum(server_cpu_s) * 1e6 / max(1, sent_frames), 1),
        "client_cpu_s_during_load": round(client_cpu_s, 2),
        "machine_cores_busy_during_load": round(machine_cores_busy, 2),
        "machine_cores_busy_with_irq_during_load": round(machine_cores_busy_all, 2),
        "pin": args.pin,
        "sched_during_load": sched,
        "latency_by_kind_and_server": rows,
        "api_call_ms": {
            kind: {
                "p50": round(percentile(values, 0.50) * 1000, 1),
                "p99": round(percentile(values, 0.99) * 1000, 1),
            }
            for kind, values in durations.items()
        },
    }
    (RESULTS_DIR / "live_fanout.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print("kinds are '<event type>@<server index>' (server 1 is B: cross-process when --processes 2)")


if __name__ == "__main__":
    main()

"""Run the real CLI and real server processes from tests: `python main.py ...` as subprocesses.

Cross-process behaviour (shared cache, event bus, embedded-mode lock, the operator's CLI) can only be tested
with separate processes; in-process ASGI tests share one event bus and one cache and would pass for the wrong
reason. Every wait here is bounded and polls, and every process started is stopped on the way out, also when
the test fails. A test that fails while servers run gets the tail of each one's log in its report (see
tests/conftest.py), and those logs are kept on disk instead of removed, so a one-off failure explains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra.settings import PROJECT_ROOT, Settings
from tests.graphql_client import assert_error_fields

MAIN = PROJECT_ROOT / "main.py"
# Generous: an embedded server migrates and seeds before it answers, and CI machines can be busy.
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.05
# Tail of a process's log quoted in failure messages: enough for a traceback, short enough to read.
LOG_TAIL = 6000

# Servers running, or stopped since the last test report: the ones a failing test's report quotes.
_watched: list[ServerProcess] = []

# Every setting the app reads from the environment, plus uvicorn's worker count (read by `serve`): a child
# gets none of the test process's values unless the test passes them explicitly.
_APP_ENV = {field.alias for field in Settings.model_fields.values() if field.alias} | {"WEB_CONCURRENCY"}


class ServerStartError(RuntimeError):
    pass


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any app setting, plus `overrides`.

    The test session sets DATA_DIR, DATABASE_URL and REDIS_URL for itself (tests/conftest.py); a child must
    not inherit them by accident, e.g. an "embedded" CLI test silently running against PostgreSQL.
    """
    env = {k: v for k, v in os.environ.items() if k not in _APP_ENV}
    env["PYTHONUNBUFFERED"] = "1"  # prints appear in the log as they happen, not at exit
    env.update(overrides)
    return env


def free_port() -> int:
    # The port may be taken again before the server binds it; `running_server` retries on that.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1].strip() if lines else ""

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr[-LOG_TAIL:]}"


async def run_cli(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None, time_limit: float = 60.0
) -> CliResult:
    """Run `python main.py <args>` to completion (killed after `time_limit` seconds)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(MAIN),
        *args,
        env=dict(env),
        cwd=str(cwd or PROJECT_ROOT),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(time_limit):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        _signal_group(process, signal.SIGKILL)
        await process.wait()
        raise AssertionError(f"`main.py {' '.join(args)}` did not finish within {time_limit}s") from None
    finally:
        if process.returncode is None:  # cancelled: never leave it behind
            _signal_group(process, signal.SIGKILL)
            await process.wait()
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    log_path: Path
    _http: httpx.AsyncClient | None = None
    # Set when a test failed while this server ran: its log is kept for whoever reads the failure.
    keep_log: bool = False
    # The log's tail when the server stopped (its file is then removed, unless kept).
    final_log: str | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.AsyncClient:
        # One keep-alive client per server: a new httpx client per request costs tens of milliseconds (it
        # builds an SSL context), which would swamp the latencies the tests measure.
        # The timeout is a hang guard, not a latency check: load tests send hundreds of requests at once, and
        # on a busy 2-core machine the last of them waits seconds for its turn.
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30.0)
        return self._http

    async def stop(self) -> None:
        """Close the client, stop the process (SIGTERM, then SIGKILL) and remove its log, unless a test failed
        while it ran (then the log stays, and its path is printed)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await stop_process(self.process)
        self.final_log = self.log()
        if self.keep_log:
            print(f"server log kept: {self.log_path}")
        else:
            self.log_path.unlink(missing_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log(self) -> str:
        """What the server printed so far (stdout and stderr interleaved), for failure messages."""
        if self.final_log is not None:
            return self.final_log
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL:]
        except FileNotFoundError:
            return ""

    async def post(
        self, query: str, variables: Mapping[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            self.url, json={"query": query, "variables": dict(variables or {})}, headers=headers
        )

    async def gql(
        self, query: str, variables: Mapping[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a request that must succeed without GraphQL errors."""
        response = await self.post(query, variables, token)
        body = response.json()
        assert_error_fields(query, body)
        assert response.status_code == 200 and "errors" not in body, (response.status_code, body)
        data: dict[str, Any] = body["data"]
        return data


async def _wait_until_ready(server: ServerProcess, deadline: float) -> None:
    while True:
        if server.process.returncode is not None:
            raise ServerStartError(
                f"the server exited with code {server.process.returncode} before answering\n{server.log()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            response = await server.http.post(server.url, json={"query": "{ __typename }"}, timeout=2.0)
            if response.status_code == 200 and response.json().get("data") == {"__typename": "Query"}:
                return
        if time.monotonic() >= deadline:
            raise ServerStartError(
                f"the server did not answer {{ __typename }} within {STARTUP_TIMEOUT}s\n{server.log()}"
            )
        await asyncio.sleep(POLL_INTERVAL)


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    # The child leads its own session (start_new_session), so its group id is its pid and the group holds
    # only what it started (e.g. uvicorn workers). Signal it only while the leader is alive: after it has
    # been reaped its pid may belong to someone else.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


async def stop_process(process: asyncio.subprocess.Process, grace: float = STOP_TIMEOUT) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it is still there after `grace` seconds."""
    if process.returncode is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await process.wait()
    except TimeoutError:
        _signal_group(process, signal.SIGKILL)
        await process.wait()


async def start_server(
    env: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    port: int | None = None,
    cwd: Path | None = None,
    log_dir: Path | None = None,
) -> ServerProcess:
    """Start `python main.py serve` without waiting for it; the caller must `stop_process` it."""
    port = port or free_port()
    fd, log_name = tempfile.mkstemp(prefix=f"lianmall-serve-{port}-", suffix=".log", dir=log_dir)
    # A file, not a pipe: nobody reads a pipe while the test runs, and a full one would block the server.
    with os.fdopen(fd, "wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(MAIN),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
            env=dict(env),
            cwd=str(cwd or PROJECT_ROOT),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(process=process, port=port, log_path=Path(log_name))
    _watched.append(server)
    return server


def server_logs_for_report(failed: bool) -> list[tuple[str, str]]:
    """At each test report: when it failed, a (title, log tail) section per server running now or stopped
    during the test (the running ones keep their log files). Servers stopped meanwhile are then forgotten."""
    sections = []
    for server in _watched:
        if not failed:
            continue
        if server.final_log is None:
            server.keep_log = True
            title = f"server on port {server.port}, running; its log is kept at {server.log_path}"
        else:
            title = f"server on port {server.port}, stopped (exit {server.process.returncode})"
        sections.append((title, server.log() or "(empty log)"))
    _watched[:] = [server for server in _watched if server.final_log is None]
    return sections


@contextlib.asynccontextmanager
async def running_server(
    env: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> AsyncIterator[ServerProcess]:
    """A `python main.py serve` answering GraphQL on a free port; stopped (and its log removed) on exit."""
    attempts = 3
    for attempt in range(1, attempts + 1):
        server = await start_server(env, args=args, cwd=cwd)
        try:
            await _wait_until_ready(server, time.monotonic() + startup_timeout)
            break
        except BaseException as exc:
            log = server.log()
            await server.stop()
            # Another process took the free port between our probe and the server's bind: try a new one.
            port_taken = isinstance(exc, ServerStartError) and "address already in use" in log.lower()
            if not port_taken or attempt == attempts:
                raise
    try:
        yield server
    finally:
        await server.stop()

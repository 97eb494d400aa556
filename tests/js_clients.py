"""Running the real JavaScript clients (Node) and a real browser (Debian's chromium) against the server.

The JS packages are pinned in tests/js/package-lock.json and installed with `npm ci` the first time (again only
when the lockfile changes); chromium is installed with apt-get when missing. Every process started here is
bounded in time and killed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from infra.websocket_frames import uvicorn_websocket_options
from tests.in_loop_server import in_loop_server

JS_DIR = Path(__file__).resolve().parent / "js"
CHROMIUM = "/usr/bin/chromium"
INSTALL_TIMEOUT = 900


def _run(command: list[str], cwd: Path | None = None) -> None:
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def js_deps() -> Path:
    """tests/js with its node_modules installed exactly as the lockfile says."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20+ and npm are needed for the JavaScript client tests")
    lock = JS_DIR / "package-lock.json"
    stamp = JS_DIR / "node_modules" / ".lianmall-lock-sha256"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        # --prefer-offline: the npm cache answers when it can, so a re-install needs no network.
        _run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR)
        stamp.write_text(wanted)
    return JS_DIR


@pytest.fixture(scope="session")
def chromium(js_deps: Path) -> str:
    """Debian's chromium (playwright's own browser downloads are not available here)."""
    if not Path(CHROMIUM).exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "chromium"]
        if subprocess.run(
            install, capture_output=True, timeout=INSTALL_TIMEOUT, env=env, check=False
        ).returncode:
            _run(["apt-get", "update", "-q"])
            _run(install)
    return CHROMIUM


class NodeProcess:
    """A running `node <script> ...`; its stdout is read as one JSON message per line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.messages: list[dict[str, Any]] = []

    async def next_message(self, within: float = 10.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            line = await self.process.stdout.readline()
        if not line:
            raise AssertionError(
                f"node exited ({await self._exit_code()}) without a message: {await self.stderr()}"
            )
        message: dict[str, Any] = json.loads(line)
        self.messages.append(message)
        return message

    async def until(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The next message of type `kind`; an error message from the client fails the test."""
        async with asyncio.timeout(within):
            while True:
                message = await self.next_message(within)
                if message["type"] == kind:
                    return message
                if message["type"] == "error" and kind != "error":
                    raise AssertionError(f"the client failed: {message}\n{await self.stderr()}")

    async def stderr(self) -> str:
        if self.process.returncode is None or self.process.stderr is None:
            return ""
        return (await self.process.stderr.read()).decode(errors="replace")[-3000:]

    async def _exit_code(self) -> int | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.process.wait()
        return self.process.returncode


@contextlib.asynccontextmanager
async def node(script: str, *args: str, time_limit: float = 30.0) -> AsyncIterator[NodeProcess]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / script),
        *args,
        cwd=str(JS_DIR),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own group: chromium started by it goes down with it
    )
    try:
        async with asyncio.timeout(time_limit):
            yield NodeProcess(process)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def client_options(**options: Any) -> str:
    return json.dumps(options)


@contextlib.asynccontextmanager
async def live_server(app: object) -> AsyncIterator[str]:
    """The app on a real 127.0.0.1 socket in this event loop (sharing this process's database and runtime),
    for clients in other processes. Yields the base URL, http://127.0.0.1:<port>. WebSockets as `main.py serve`
    runs them (our frame writer, no permessage-deflate): the browsers' and Node's graphql-ws read those frames."""
    async with in_loop_server(app, log_level="warning", **uvicorn_websocket_options()) as port:
        yield f"http://127.0.0.1:{port}"


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10.0, what: str = ""
) -> None:
    """Poll until `condition` holds (bounded)."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)

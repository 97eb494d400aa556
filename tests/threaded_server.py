"""Serving a stand-in's Starlette app with uvicorn on a free 127.0.0.1 port, in a daemon thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

STARTUP_TIMEOUT = 10.0


class ThreadedServer:
    """Mixin for a stand-in: it provides `app`; this serves it and sets `port`."""

    app: Any
    port: int = 0
    thread_name = "stand-in"
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        # WeChat's servers keep idle connections far longer than uvicorn's 5 s default; with the default, a
        # pooled connection the stand-in was closing just then made a login fail now and then (ConnectionError).
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=120
        )
        self._server = uvicorn.Server(config)
        # Not the main thread, so uvicorn leaves the test process's signal handlers alone.
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.thread_name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT)
        self._server = None
        self._thread = None

"""Running synchronous HTTP clients (wechatpy uses requests) from async code without harming the server.

- Every request gets a timeout, because wechatpy's token fetch passes none and a silent peer would hang a
  worker thread forever.
- One connection pool per client kind per process (urllib3's pool is thread-safe): a TLS handshake per call
  would add tens of milliseconds.
- Each kind of call has its own cap on worker threads, so a slow peer ties up at most that many threads
  instead of anyio's whole default pool, which the rest of the server shares.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import requests

T = TypeVar("T")


class TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        # requests reads the proxy and CA bundle variables from the whole environment on every request (a third
        # of a WeChat Pay call's CPU); the environment does not change while the server runs, so each answer
        # is kept per scheme and host (and the request's own settings).
        parts = urlsplit(url.decode() if isinstance(url, bytes) else url or "")
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) < 64:
                self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


class ThreadLane:
    """A named client's HTTP session and its share of worker threads."""

    def __init__(self, threads: int, timeout: float) -> None:
        self.threads = threads
        self.timeout = timeout
        self._session: TimeoutSession | None = None
        # A CapacityLimiter belongs to one event loop; tests run several loops in one process.
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def session(self) -> TimeoutSession:
        if self._session is None:
            self._session = TimeoutSession(self.timeout)
        return self._session

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return limiter

    async def run(self, call: Callable[[], T]) -> T:
        """Run the blocking `call` in one of this lane's worker threads."""
        return await anyio.to_thread.run_sync(call, limiter=self._limiter())

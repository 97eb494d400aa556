"""A table every request reads and staff rarely change, kept by each process for a few seconds.

A write drops the copy at once in the writing process and, through one bus channel, in every other one
(`changed`, after the commit). The expiry only bounds how long a change goes unseen when its announcement was lost
(Redis failing at the writer while this process's subscription still looked alive): about as long as the bus
takes to notice a hung Redis. While the bus is disconnected (or without a runtime) nothing is kept: no process
would hear of another one's change (infra/bus_follower.py). A read that started before a drop is not kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from infra.bus_follower import BusFollower
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime

log = logging.getLogger("lianmall.kept_copy")

T = TypeVar("T")


class KeptCopy(Generic[T]):
    def __init__(self, channel: str, seconds: float) -> None:
        self.channel = channel
        self.seconds = seconds
        self._kept: tuple[float, T] | None = None  # (expires, time.monotonic(); the copy)
        # Bumped by every drop: a read that started before one must not be kept after it.
        self._generation = 0
        self._bus = BusFollower(lambda bus: bus.add_handler(channel, self._on_changed), self.forget)

    def forget(self) -> None:
        """Drop this process's copy; the next read loads it again."""
        self._kept = None
        self._generation += 1

    def _on_changed(self, _payload: dict[str, object]) -> None:
        self.forget()

    async def get(self, load: Callable[[], Awaitable[T]], fits: Callable[[T], bool] | None = None) -> T:
        """The kept copy while it is fresh (and `fits` the caller, when given), else `load()`, kept if it may be."""
        if not self._bus.follow():
            return await load()
        kept = self._kept
        if kept is not None and time.monotonic() < kept[0] and (fits is None or fits(kept[1])):
            return kept[1]
        generation = self._generation
        value = await load()
        if generation == self._generation and self._bus.follow():
            self._kept = (time.monotonic() + self.seconds, value)
        return value

    async def changed(self) -> None:
        """After a committed write: drop the copy here at once, and in every other process through the bus.
        Never raises: a change Redis did not take is seen everywhere within `seconds` anyway."""
        self.forget()
        try:
            runtime = current_runtime()
        except RuntimeError:
            return
        try:
            await runtime.bus.publish(self.channel, {})
        except REDIS_ERRORS as exc:
            log.warning("change on %s not announced: %s", self.channel, exc)

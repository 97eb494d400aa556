"""A process-local memory that forgets on bus events, hooked onto the runtime's bus on first use.

Services outlive runtimes (tests and the CLI run without one, or with several in turn), so a memory cannot
register its handlers at start-up: it asks `follow()` before trusting what it keeps (and before keeping
anything), which registers them on the current bus once. `follow()` is True only while that bus is connected:
while it is not, events from other processes cannot arrive, so the memory must be treated as empty (its callers
ask Redis or the database instead) and keep nothing. And the memory is reset whenever the bus's subscription is
not the one it last saw (the first time, and after every loss: events may have been missed meanwhile), before
`follow()` says True again; a reset bumps the memory's generation, so an answer read before it is not kept.
Without a runtime `follow()` is False: then nothing is kept.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from infra.bus import EventBus
from infra.runtime import current_runtime


class BusFollower:
    def __init__(self, attach: Callable[[EventBus], None], reset: Callable[[], None]) -> None:
        self._attach = attach
        self._reset = reset
        self._bus: EventBus | None = None
        # Buses whose events already reach the memory (a test may go back to an earlier runtime's bus).
        self._attached: weakref.WeakSet[EventBus] = weakref.WeakSet()
        self._subscription = -1  # the bus's subscription the memory was last reset for

    def follow(self) -> bool:
        """True when what the memory keeps may be used and added to: the runtime's bus is followed (handlers
        registered once per bus) and connected, and the memory was reset since its subscription began."""
        try:
            bus = current_runtime().bus
        except RuntimeError:
            return False
        if bus is not self._bus:
            if bus not in self._attached:
                self._attach(bus)
                self._attached.add(bus)
            self._bus = bus
            self._subscription = -1
        if not bus.connected:
            return False
        if bus.subscriptions != self._subscription:
            self._reset()
            self._subscription = bus.subscriptions
        return True

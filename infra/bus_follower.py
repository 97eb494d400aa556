"""A process-local memory that forgets on bus events, hooked onto the runtime's bus on first use.

Services outlive runtimes (tests and the CLI run without one, or with several in turn), so a memory cannot
register its handlers at start-up: it asks `follow()` before trusting what it keeps, which registers them on
the current bus once and resets the memory (events may have been missed before), and resets it again on every
reconnect. Without a runtime `follow()` is False: then nothing is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.bus import EventBus
from infra.runtime import current_runtime


class BusFollower:
    def __init__(self, attach: Callable[[EventBus], None], reset: Callable[[], None]) -> None:
        self._attach = attach
        self._reset = reset
        self._bus: EventBus | None = None

    def follow(self) -> bool:
        """True when the runtime's bus is followed (handlers registered once per bus); False without a runtime."""
        try:
            bus = current_runtime().bus
        except RuntimeError:
            return False
        if bus is not self._bus:
            self._attach(bus)
            bus.on_reconnect(self._reset)
            self._reset()
            self._bus = bus
        return True

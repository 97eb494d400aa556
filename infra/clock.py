"""The one clock of the server. Tests replace it with `set_clock` to drive time-based rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

SHOP_TZ = ZoneInfo("Asia/Shanghai")

_clock: Callable[[], datetime] = lambda: datetime.now(SHOP_TZ)  # noqa: E731


def now() -> datetime:
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    global _clock
    _clock = clock or (lambda: datetime.now(SHOP_TZ))

"""Running a whole transaction again when SQLite reports the database busy.

On SQLite Tortoise serialises one process's transactions on its one connection, but another process writing the
same file can still make a transaction fail with "database is locked"; PostgreSQL never answers that way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tortoise.exceptions import OperationalError, TransactionManagementError

log = logging.getLogger("lianmall.db")

T = TypeVar("T")

BUSY_ATTEMPTS = 8
_BUSY_FIRST_PAUSE = 0.01


def _is_busy(exc: Exception) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


async def retry_when_busy(operation: Callable[[], Awaitable[T]]) -> T:
    """Run `operation` (one whole transaction); if SQLite reports the database locked, run it again.

    Retrying is safe because a failed transaction rolled back. Other errors, and the last attempt's, propagate.
    """
    for attempt in range(1, BUSY_ATTEMPTS + 1):
        try:
            return await operation()
        except (OperationalError, TransactionManagementError) as exc:
            if attempt == BUSY_ATTEMPTS or not _is_busy(exc):
                raise
            pause = _BUSY_FIRST_PAUSE * 2 ** (attempt - 1) * (0.5 + random.random())
            log.info("database busy (attempt %d), retrying in %.3fs", attempt, pause)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")

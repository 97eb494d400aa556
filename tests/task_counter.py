"""The asyncio tasks a piece of code creates: each one costs the event loop another pass."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def tasks_made() -> Iterator[list[object]]:
    """The coroutines of the tasks created on the running loop inside the block, in order."""
    loop = asyncio.get_running_loop()
    made: list[object] = []
    previous = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)  # type: ignore[arg-type]
    try:
        yield made
    finally:
        loop.set_task_factory(previous)

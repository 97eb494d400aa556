"""Numbers that change with every sale (stock, remaining allotments), kept out of cached answers.

A product page being sold changes with every order, but only in a few numbers. The response cache stores such an
answer as a template: its bytes with a hole where each of those numbers was, and per hole the key of the number
("s:42", the stock of SKU 42) and how to show it. A hit fills the holes from this process's table of current
values, so an order no longer drops the page (and every waiting connection no longer recomputes it).

The table is kept current two ways:
- events every process already hears (the stock events a committed order publishes) set a value at once;
- a value is read again from the database (batched, one task per process) when an answer needs it and it is
  older than REFRESH_AFTER, and before it is used at all when older than MAX_AGE. Events can be lost (pub/sub)
  or arrive out of order (two processes selling the same SKU publish after their commits in any order), so a
  value an event brought is read again SETTLE seconds later as well.
A number shown from a cached answer is therefore never more than about MAX_AGE old, and usually milliseconds.

Domains plug in without infra knowing them: `register_reader(namespace, read)` reads current values of one
namespace ("s" for "s:42") by integer id, and `register_feed(channel_prefix, translate)` turns an event on the
bus into (key, value) pairs (value None: read it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from infra.bus import EventBus

log = logging.getLogger("lianmall.volatile")

# How a hole shows its number: "n" the number itself, "le" whether it is at most the hole's argument.
NUMBER = "n"
AT_MOST = "le"
Hole = tuple[str, str, int]  # (key, form, argument)

Reader = Callable[[list[int]], Awaitable[dict[int, int]]]
Feed = Callable[[dict[str, Any]], Iterable[tuple[str, int | None]]]

MAX_AGE = 1.0
REFRESH_AFTER = 0.5
SETTLE = 0.1
MAX_ENTRIES = 100_000

_readers: dict[str, Reader] = {}
_feeds: dict[str, Feed] = {}


def register_reader(namespace: str, read: Reader) -> None:
    """`read(ids)` returns the current value of "<namespace>:<id>" for each id that still exists."""
    _readers[namespace] = read


def register_feed(channel_prefix: str, translate: Feed) -> None:
    """Events on channels starting with `channel_prefix` update the table through `translate(payload)`."""
    _feeds[channel_prefix] = translate


def present(form: str, argument: int, value: int) -> int | bool:
    """What a hole of `form` shows for `value` (what the resolver returns when it computes the answer)."""
    return value <= argument if form == AT_MOST else value


def encode(form: str, argument: int, value: int) -> bytes:
    if form == AT_MOST:
        return b"true" if value <= argument else b"false"
    return str(value).encode()


@dataclass(slots=True)
class _Value:
    value: int
    checked: float  # when the database (or an event) last said so, monotonic
    verify_at: float  # when to read it from the database again
    heard: float = 0.0  # when an event last set it


class VolatileTable:
    """This process's current volatile numbers; see the module docstring."""

    def __init__(self, bus: EventBus | None = None, *, max_entries: int = MAX_ENTRIES) -> None:
        self._values: dict[str, _Value] = {}
        self._max_entries = max_entries
        self._wanted: set[str] = set()
        self._next: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.reads = 0  # database reads made (each a batch), for tests and the benchmark
        # Bumped by every change of a value or of its standing (set, read again, forgotten): what was rendered
        # from the table at another version is rendered again (infra/response_cache.py, `render`).
        self.version = 0
        if bus is not None:
            bus.add_prefix_handler("", self._on_event)
            bus.on_reconnect(self.clear)

    # -- values ----------------------------------------------------------------------------------------------

    def current(self, keys: Iterable[str]) -> dict[str, int] | None:
        """The values of `keys` if every one is known and at most MAX_AGE old, else None. Values due for a check
        are read again in the background meanwhile."""
        known = self.current_until(keys)
        return None if known is None else known[0]

    def current_until(self, keys: Iterable[str]) -> tuple[dict[str, int], float] | None:
        """`current`, and until when (monotonic) the same values may be shown without asking again, as long as
        `version` stays the same: the first moment one of them gets too old or is due for a check."""
        now = time.monotonic()
        found: dict[str, int] = {}
        due: list[str] = []
        values = self._values
        until = math.inf
        for key in keys:
            entry = values.get(key)
            if entry is None or now - entry.checked > MAX_AGE:
                return None
            if entry.verify_at <= now:
                due.append(key)
                # Asked for once: the hits until the read is applied do not ask again.
                entry.verify_at = now + REFRESH_AFTER
            found[key] = entry.value
            until = min(until, entry.checked + MAX_AGE, entry.verify_at)
        if due:
            self._want(due)
        return found, until

    async def values(self, keys: Iterable[str]) -> dict[str, int] | None:
        """The current values of `keys`, reading what is unknown or too old from the database first. When the
        database cannot answer, the last values known (if every key has one); None if some key has none."""
        keys = list(keys)
        found = self.current(keys)
        if found is not None:
            return found
        now = time.monotonic()
        stale = [k for k in keys if (e := self._values.get(k)) is None or now - e.checked > MAX_AGE]
        await asyncio.shield(self._want(stale))
        found = self.current(keys)
        if found is not None:
            return found
        if all(k in self._values for k in keys):
            return {k: self._values[k].value for k in keys}
        return None

    def seed(self, key: str, value: int, read_at: float) -> None:
        """A computation read `value` from the database at `read_at` (monotonic): keep it unless something
        newer is known. It is checked again soon, as an event may have passed it while it was computed."""
        entry = self._values.get(key)
        if entry is None:
            if len(self._values) >= self._max_entries:
                self._values.clear()
            self._values[key] = _Value(value, read_at, read_at + SETTLE)
            self.version += 1
        elif entry.checked < read_at and entry.heard < read_at:
            entry.value, entry.checked = value, read_at
            entry.verify_at = min(entry.verify_at, read_at + SETTLE)
            self.version += 1

    def heard(self, key: str, value: int | None) -> None:
        """An event said `key` is now `value` (None: it changed, value unknown). Only keys some answer uses are
        kept; the value is checked again SETTLE seconds later (events from two processes may cross)."""
        entry = self._values.get(key)
        if entry is None:
            return
        self.version += 1
        now = time.monotonic()
        if value is None:
            entry.checked = 0.0  # unusable until read again
            entry.verify_at = now
            return
        entry.value, entry.checked, entry.heard = value, now, now
        entry.verify_at = min(entry.verify_at, now + SETTLE)

    def clear(self) -> None:
        """Forget everything (the bus reconnected: events may have been missed)."""
        self._values.clear()
        self.version += 1

    # -- reading from the database -----------------------------------------------------------------------------

    def _want(self, keys: Iterable[str]) -> asyncio.Future[None]:
        """Ask for `keys` in the next batch read; the future completes when that batch has been applied."""
        self._wanted.update(keys)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        batch_done = self._next
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._read_batches(), name="volatile-refresh")
        return batch_done

    async def _read_batches(self) -> None:
        while self._wanted:
            keys, self._wanted = self._wanted, set()
            batch_done, self._next = self._next, None
            started = time.monotonic()
            try:
                fresh = await self._read(keys)
            except Exception as exc:  # the database is the caller's problem; keep the last values known
                if not self._failing:
                    log.warning("volatile values not read (%s): %s", type(exc).__name__, exc)
                self._failing = True
                fresh = None
            finally:
                if batch_done is not None and not batch_done.done():
                    # Applied below before any waiter runs: set_result only schedules their wake-up.
                    batch_done.set_result(None)
            if fresh is not None:
                self._failing = False
                self._apply(keys, fresh, started)

    async def _read(self, keys: set[str]) -> dict[str, int]:
        by_namespace: dict[str, list[int]] = {}
        for key in keys:
            namespace, _, ident = key.partition(":")
            if namespace in _readers and ident.isdigit():
                by_namespace.setdefault(namespace, []).append(int(ident))
        fresh: dict[str, int] = {}
        for namespace, ids in by_namespace.items():
            self.reads += 1
            for ident, value in (await _readers[namespace](sorted(ids))).items():
                fresh[f"{namespace}:{ident}"] = value
        return fresh

    def _apply(self, keys: set[str], fresh: dict[str, int], started: float) -> None:
        self.version += 1
        now = time.monotonic()
        for key in keys:
            entry = self._values.get(key)
            value = fresh.get(key)
            if value is None:
                self._values.pop(key, None)  # gone from the database: the answer is recomputed
                continue
            if entry is None:
                if len(self._values) >= self._max_entries:
                    self._values.clear()
                self._values[key] = _Value(value, started, now + REFRESH_AFTER)
            elif entry.heard > started:
                continue  # an event during the read is newer; it is checked again after SETTLE anyway
            else:
                entry.value, entry.checked, entry.verify_at = value, started, now + REFRESH_AFTER

    def _on_event(self, channel: str, payload: dict[str, Any]) -> None:
        for prefix, translate in _feeds.items():
            if channel.startswith(prefix):
                for key, value in translate(payload):
                    self.heard(key, value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

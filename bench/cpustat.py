"""CPU accounting from /proc, to tell how much of the machine something else used during a measurement.

On a 2-core machine any other busy process (a test run, another server) lands on the server's or wrk's core
and silently lowers the numbers; these readings let run.py flag such runs instead of reporting them as
clean.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """User + system CPU seconds of all cores since boot.

    irq/softirq time is left out: loopback traffic is mostly softirq, charged to no process, and would read
    as "someone else".
    """
    user, nice, system = (int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:4])
    return (user + nice + system) / _TICKS_PER_S


def machine_all_busy_s() -> float:
    """All CPU seconds of all cores since boot but idle and iowait: user, nice, system, irq, softirq, steal.
    With thousands of loopback sockets softirq is a large share: machine_busy_s alone reads as spare cores
    what the network stack took."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICKS_PER_S


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        # The command name may contain spaces and parentheses: fields are counted after the last ')'.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def sched_s(pid: int) -> tuple[float, float]:
    """Seconds one process's threads ran on a CPU and waited runnable in a run queue, since they started
    (/proc/<pid>/task/*/schedstat; (0, 0) if the process is gone). Waiting is what a busy machine adds to each
    event's latency: time the process had work but no core."""
    run = wait = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            ran, waited, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        run, wait = run + int(ran), wait + int(waited)
    return run / 1e9, wait / 1e9


def children_cpu_s() -> float:
    """CPU seconds of our children that have exited (wrk, once it returns)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_cores(sample_s: float = 1.0) -> float:
    """Cores' worth of CPU the machine uses over `sample_s` while we run nothing ourselves."""
    before = machine_busy_s()
    time.sleep(sample_s)
    return (machine_busy_s() - before) / sample_s


def wait_for_quiet(max_wait_s: float, threshold_cores: float) -> float:
    """Sample until other work stays under `threshold_cores` or `max_wait_s` passes; return the last sample."""
    deadline = time.monotonic() + max_wait_s
    busy = busy_cores()
    while busy > threshold_cores and time.monotonic() < deadline:
        busy = busy_cores()
    return busy


@dataclass
class Window:
    """CPU used by everything except the server and our children, between start() and stop()."""

    server_pid: int | None
    _started: float = 0.0
    _machine: float = 0.0
    _server: float = 0.0
    _children: float = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._machine = machine_busy_s()
        self._server = process_cpu_s(self.server_pid) if self.server_pid else 0.0
        self._children = children_cpu_s()

    def other_cores(self) -> float:
        elapsed = time.monotonic() - self._started
        machine = machine_busy_s() - self._machine
        server = (process_cpu_s(self.server_pid) - self._server) if self.server_pid else 0.0
        children = children_cpu_s() - self._children
        # Tick sampling makes the per-process and machine figures disagree slightly; clamp small negatives.
        return max(0.0, (machine - server - children) / elapsed) if elapsed else 0.0

"""bench/cpustat.py's run-queue and machine readings, which bench/live_fanout.py reports per process: a wrong
field would turn "the server waited for a core" into noise."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import cpustat

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux /proc only")


def test_run_time_counts_cpu_spent() -> None:
    ran, waited = cpustat.sched_s(os.getpid())
    cpu = time.process_time()
    while time.process_time() - cpu < 0.2:
        pass
    ran_after, waited_after = cpustat.sched_s(os.getpid())
    assert ran_after - ran >= 0.15  # the busy loop's CPU (schedstat counts nanoseconds on a core)
    assert waited_after >= waited >= 0


def test_a_gone_process_reads_as_nothing() -> None:
    assert cpustat.sched_s(2**22 + 1) == (0.0, 0.0)  # above Linux's pid_max


def test_busy_with_irq_includes_the_rest() -> None:
    busy = cpustat.machine_busy_s()  # read first: the counters only grow
    assert cpustat.machine_all_busy_s() >= busy > 0

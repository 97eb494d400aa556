"""wrk: installation, one run, and parsing its summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cpustat

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"
_SUMMARY_MARKER = "BENCH_JSON "
_RPS_LINE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


class LoadError(RuntimeError):
    """wrk failed, or some requests failed: the numbers would be meaningless."""


@dataclass(frozen=True)
class LoadSettings:
    threads: int
    connections: int
    duration_s: int
    warmup_s: int
    cpu: int | None  # core wrk is pinned to; None when pinning is unavailable
    # Before each scenario, wait up to this long for other processes to stop using more than quiet_cores.
    quiet_wait_s: float = 0.0
    quiet_cores: float = 0.15


@dataclass(frozen=True)
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    # Cores' worth of CPU used by other processes during the measured run (not the server, not wrk).
    other_cpu_cores: float
    raw_output: str

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["raw_output"]
        return data


def ensure_wrk() -> str:
    """Return wrk's path, installing the Debian package if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise LoadError("wrk is not installed and we are not root: run `apt-get install -y wrk` first")
    print("wrk not found: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # A fresh container may have no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise LoadError("apt-get reported success but wrk is still not on PATH")
    return found


def run_wrk(
    wrk: str, url: str, body: bytes, settings: LoadSettings, workdir: Path, label: str, server_pid: int | None
) -> LoadResult:
    """Warm up, then measure; raise LoadError if any request failed in either phase."""
    body_file = workdir / f"{label}.body.json"
    body_file.write_bytes(body)
    # Before the warm-up, not between it and the measurement: idling would let the server's caches expire.
    if settings.quiet_wait_s > 0:
        busy = cpustat.wait_for_quiet(settings.quiet_wait_s, settings.quiet_cores)
        if busy > settings.quiet_cores:
            print(
                f"  still {busy:.2f} cores busy with other work after {settings.quiet_wait_s:g}s; going ahead"
            )
    if settings.warmup_s > 0:
        _run_once(wrk, url, body_file, settings, settings.warmup_s, f"{label} (warm-up)")
    window = cpustat.Window(server_pid)
    window.start()
    result = _run_once(wrk, url, body_file, settings, settings.duration_s, label)
    return replace(result, other_cpu_cores=window.other_cores())


def _run_once(
    wrk: str, url: str, body_file: Path, settings: LoadSettings, duration_s: int, label: str
) -> LoadResult:
    command = [
        wrk,
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    if settings.cpu is not None:
        command = ["taskset", "-c", str(settings.cpu), *command]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if proc.returncode != 0:
        raise LoadError(f"wrk failed for {label} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = parse_wrk_output(proc.stdout)
    failed = {kind: n for kind, n in result.errors.items() if n}
    if failed:
        raise LoadError(f"{label}: requests failed {failed}; wrk output:\n{proc.stdout}")
    if result.requests == 0:
        raise LoadError(f"{label}: wrk completed no request; wrk output:\n{proc.stdout}")
    return result


def parse_wrk_output(output: str) -> LoadResult:
    """Read the JSON line post.lua's done() prints; cross-check req/s against wrk's own line."""
    lines = [line for line in output.splitlines() if line.startswith(_SUMMARY_MARKER)]
    if not lines:
        raise LoadError(f"no summary line in wrk output (is post.lua in use?):\n{output}")
    summary = json.loads(lines[-1].removeprefix(_SUMMARY_MARKER))
    duration_s = summary["duration_us"] / 1e6
    rps = summary["requests"] / duration_s if duration_s else 0.0
    printed = _RPS_LINE.search(output)
    if printed and rps and abs(float(printed.group(1)) - rps) > 0.01 * rps:
        raise LoadError(f"req/s mismatch: wrk printed {printed.group(1)}, summary gives {rps:.2f}")
    return LoadResult(
        requests=summary["requests"],
        duration_s=duration_s,
        rps=rps,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        errors={
            "connect": summary["connect_errors"],
            "read": summary["read_errors"],
            "write": summary["write_errors"],
            "timeout": summary["timeouts"],
            "http_4xx_5xx": summary["non_2xx_3xx"],
        },
        other_cpu_cores=0.0,
        raw_output=output,
    )

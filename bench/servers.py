"""Starting, probing and stopping the servers under test, and reading a worker's memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ServerError(RuntimeError):
    pass


@dataclass
class RunningServer:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: list[str], cpu: int | None) -> list[str]:
    # taskset execs the command, and CPU affinity is inherited, so uvicorn's workers stay on this core too.
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def start(
    name: str, command: list[str], port: int, env: dict[str, str], cwd: Path, log_path: Path
) -> RunningServer:
    with log_path.open("wb") as log:
        # Own session: stop() can signal the whole group it started without touching anything else.
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return RunningServer(name=name, process=process, port=port, log_path=log_path)


def wait_ready(server: RunningServer, timeout_s: float) -> None:
    """Poll `{ __typename }` until it answers; the server migrates and seeds before it listens."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.name} exited with {server.process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            reply = post_json(server.url, {"query": "{ __typename }"}, timeout_s=2)
            if reply.status == 200 and (reply.payload.get("data") or {}).get("__typename"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise ServerError(f"{server.name} not ready after {timeout_s:g}s:\n{server.log_tail()}")


def stop(server: RunningServer, timeout_s: float = 15) -> None:
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=timeout_s)


@dataclass(frozen=True)
class Reply:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    size: int  # body bytes as sent


def post_json(url: str, payload: dict[str, Any], timeout_s: float = 10) -> Reply:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), dict(error.headers)
    lowered = {k.lower(): v for k, v in headers.items()}
    return Reply(status=status, payload=json.loads(raw or b"{}"), headers=lowered, size=len(raw))


def serving_pid(server: RunningServer) -> int:
    """The process that serves requests.

    With one worker uvicorn serves in the process we started, but a supervisor may fork it; the serving
    process is the deepest one in our tree that holds the listening socket.
    """
    return _serving_pid(server.process.pid, server.port)


def worker_rss_kib(server: RunningServer) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB of the process that serves requests."""
    pid = serving_pid(server)
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
    return int(fields["VmRSS"]), int(fields["VmHWM"])


def _serving_pid(root: int, port: int) -> int:
    inodes = _listening_inodes(port)
    tree = _process_tree(root)
    holders = [pid for pid, depth in tree if _holds_any_socket(pid, inodes)]
    if not holders:
        return root
    depth_of = dict(tree)
    return max(holders, key=lambda pid: depth_of[pid])


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    return inodes


def _process_tree(root: int) -> list[tuple[int, int]]:
    """(pid, depth) of root and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may contain spaces and parentheses: the ppid follows the last ')'.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree: list[tuple[int, int]] = []
    stack = [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        tree.append((pid, depth))
        stack.extend((child, depth + 1) for child in children.get(pid, []))
    return tree


def _holds_any_socket(pid: int, inodes: set[str]) -> bool:
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False

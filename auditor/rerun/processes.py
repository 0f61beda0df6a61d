"""Finding and ending every process a rerun started.

A process group is not enough: torchrun starts each worker in a new session (its own process
group), so ``killpg`` on torchrun's group leaves the workers running when torchrun itself is
killed, and a script may start daemons of its own. A rerun's processes are therefore found two
ways and the union is ended:

- descendants of the launched process (parent links in ``/proc/<pid>/stat``), and
- any process whose environment carries the run's marker (``PGOLF_RERUN_MARKER=<token>``, set
  by the harness and inherited by every child, so orphans re-parented to init are found too).

Ending is SIGTERM to each process group and process, a grace period, then SIGKILL. The
harness's own process and group are never signalled.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

MARKER_ENV = "PGOLF_RERUN_MARKER"
PROC = "/proc"


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    state: str


def _stat(pid: int) -> ProcInfo | None:
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses; cut at the last ")".
    tail = data[data.rfind(b")") + 2:].split()
    if len(tail) < 3:
        return None
    try:
        return ProcInfo(pid, int(tail[1]), int(tail[2]), tail[0].decode("ascii", "replace"))
    except ValueError:
        return None


def process_table() -> dict[int, ProcInfo]:
    table = {}
    try:
        entries = os.listdir(PROC)
    except OSError:
        return table
    for name in entries:
        if name.isdigit():
            info = _stat(int(name))
            if info is not None and info.state != "Z":  # zombies have exited already
                table[info.pid] = info
    return table


def descendants(root: int, table: dict[int, ProcInfo]) -> set[int]:
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def carries_marker(pid: int, marker: str) -> bool:
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return False
    needle = f"{MARKER_ENV}={marker}".encode()
    return any(entry == needle for entry in environ.split(b"\0"))


def run_processes(root: int | None, marker: str) -> set[int]:
    """Live processes of one run (the launched process included), never the harness itself."""
    table = process_table()
    found = set()
    if root is not None and root in table:
        found.add(root)
        found |= descendants(root, table)
    found |= {pid for pid in table if carries_marker(pid, marker)}
    found.discard(os.getpid())
    return found


@dataclass
class EndReport:
    found: int = 0
    terminated: int = 0        # gone after SIGTERM
    killed: int = 0            # needed SIGKILL
    survivors: list[int] = field(default_factory=list)


def _signal_all(pids: set[int], sig: int) -> None:
    own_group = os.getpgrp()
    table = process_table()
    groups = {table[p].pgid for p in pids if p in table} - {own_group, 0, 1}
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(root: int | None, marker: str, seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    alive = run_processes(root, marker)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = run_processes(root, marker)
    return alive


def end_run(root: int | None, marker: str, grace_s: float = 5.0) -> EndReport:
    """SIGTERM everything the run started, wait ``grace_s``, SIGKILL what is left."""
    report = EndReport()
    alive = run_processes(root, marker)
    report.found = len(alive)
    if not alive:
        return report
    _signal_all(alive, signal.SIGTERM)
    remaining = _wait_gone(root, marker, grace_s)
    report.terminated = report.found - len(remaining)
    if remaining:
        _signal_all(remaining, signal.SIGKILL)
        remaining = _wait_gone(root, marker, 5.0)
        report.killed = report.found - report.terminated - len(remaining)
    report.survivors = sorted(remaining)
    return report

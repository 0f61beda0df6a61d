"""Keeping a rerun off the network, with the best isolation this machine allows.

Two layers, and the rerun section says which were used:

1. **Network namespace** (``unshare --net``): the child gets a network stack of its own with
   only a loopback interface, so nothing it runs (Python, native code, curl) can reach another
   machine, while torchrun's rendezvous and the gloo/NCCL bootstrap work over ``lo``. Used when
   the harness runs as root and a probe shows it works here (loopback up, the outside
   unreachable); containers without CAP_SYS_ADMIN refuse it, and the probe notices.
2. **Socket-layer guard** (always): ``network_guard`` installed as the child's
   ``sitecustomize`` refuses non-loopback lookups and connections in Python's ``socket`` module
   and records each attempt, so an attempt is reported even inside the namespace. Proxy
   variables point at a closed loopback port (curl, wget, pip, requests honour them) and the
   Hugging Face libraries are told to stay offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .network_guard import DEAD_PROXY_PORT

NAMESPACE = "network-namespace"
GUARD = "socket-guard"

# A loopback port nothing listens on (the discard port): proxied requests fail at once.
DEAD_PROXY = f"http://127.0.0.1:{DEAD_PROXY_PORT}"
LOOPBACK_NAMES = "localhost,127.0.0.1,::1"

# Inside the namespace: bring loopback up, then become the real command (same pid).
_NAMESPACE_PREFIX = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]

_PROBE = """
import socket
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(server.getsockname(), timeout=5).close()
try:
    socket.create_connection(("192.0.2.1", 80), timeout=3).close()
except OSError:
    print("ISOLATED")
else:
    print("REACHABLE")
"""


@dataclass
class Isolation:
    method: str                      # NAMESPACE or GUARD (the strongest layer in use)
    guard_dir: Path                  # holds sitecustomize.py; first on the child's PYTHONPATH
    namespace_note: str              # why the namespace is or is not used
    layers: list[str] = field(default_factory=list)

    def wrap(self, argv: list[str]) -> list[str]:
        return [*_NAMESPACE_PREFIX, *argv] if self.method == NAMESPACE else list(argv)

    def environment(self, net_log: Path) -> dict[str, str]:
        env = {
            "PGOLF_RERUN_NET_LOG": str(net_log),
            "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY, "ftp_proxy": DEAD_PROXY, "all_proxy": DEAD_PROXY,
            "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "FTP_PROXY": DEAD_PROXY, "ALL_PROXY": DEAD_PROXY,
            "no_proxy": LOOPBACK_NAMES, "NO_PROXY": LOOPBACK_NAMES,
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            # Collective bootstrap over loopback: the only interface inside the namespace, and
            # never another host outside it.
            "GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo",
        }
        return env

    def to_json(self) -> dict[str, object]:
        if self.method == NAMESPACE:
            description = ("network namespace with loopback only (unshare --net), plus the socket-layer guard "
                           "that refuses and records non-loopback connections")
        else:
            description = ("socket-layer guard: Python's socket module refuses and records non-loopback lookups "
                           "and connections; proxies point at a closed loopback port. Native code and non-Python "
                           f"programs are not covered ({self.namespace_note})")
        return {"method": self.method, "description": description, "layers": list(self.layers),
                "namespace": self.namespace_note}


def guard_source() -> str:
    return resources.files("pgolf_audit.rerun").joinpath("network_guard.py").read_text(encoding="utf-8")


def probe_namespace(python: str, timeout_s: float = 20.0) -> tuple[bool, str]:
    """Whether ``unshare --net`` works here: root, the tools present, loopback usable inside
    and the outside unreachable."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "not root: a network namespace needs CAP_SYS_ADMIN"
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        return False, f"{' and '.join(missing)} not found"
    try:
        out = subprocess.run([*_NAMESPACE_PREFIX, python, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"the namespace probe did not finish within {timeout_s:.0f} s"
    except OSError as exc:
        return False, f"unshare could not start: {exc}"
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"unshare --net failed here: {last[0]}"
    if "ISOLATED" not in out.stdout:
        return False, "the outside was reachable inside the namespace"
    return True, "unshare --net works here (probe: loopback usable, 192.0.2.1 unreachable)"


def prepare_isolation(workdir: Path, python: str, mode: str = "auto") -> Isolation:
    """Write the guard into ``workdir/pythonpath`` and pick the strongest layer that works.

    ``mode``: "auto" (namespace when it works, else the guard alone), "namespace" (the same,
    but the caller treats a missing namespace as an error), or "guard" (never the namespace).
    """
    guard_dir = workdir / "pythonpath"
    guard_dir.mkdir(parents=True, exist_ok=True)
    (guard_dir / "sitecustomize.py").write_text(guard_source(), encoding="utf-8")
    if mode == "guard":
        return Isolation(GUARD, guard_dir, "not tried (--isolation guard)", [GUARD])
    works, note = probe_namespace(python)
    if works:
        return Isolation(NAMESPACE, guard_dir, note, [NAMESPACE, GUARD])
    return Isolation(GUARD, guard_dir, note, [GUARD])

"""Socket-layer network guard for rerun children (standard library only).

The harness copies this file into a folder of its own as ``sitecustomize.py`` and puts that
folder first on the child's PYTHONPATH, so every Python process of a rerun (torchrun, its
workers, any Python subprocess) runs it at start-up. It then refuses, in Python's ``socket``
module, every attempt to reach a non-loopback address:

- ``socket.getaddrinfo`` / ``gethostbyname`` / ``gethostbyname_ex`` of a name that needs a
  name service (anything but ``localhost``, this machine's hostname and IP literals):
  ``socket.gaierror``;
- ``connect`` / ``connect_ex`` / ``sendto`` / ``sendmsg`` of an internet socket to a
  non-loopback address: ``ConnectionRefusedError``.

Python's HTTP clients are told to ignore the proxy variables (which the harness points at a
closed loopback port for non-Python tools), so a download attempt is refused and recorded with
its real destination; a connection to that dead proxy is refused and recorded as well.

Loopback stays open: torchrun's rendezvous, the gloo and NCCL bootstrap and compile workers
talk over 127.0.0.1. Unix sockets are untouched. Each refusal is appended as one JSON line
(call, target, the submission's file and line) to the file named by ``PGOLF_RERUN_NET_LOG``
and printed to stderr, so the harness can report the attempt even when the script swallows
the error.

Limits: native code (C++ sockets, NCCL, ctypes) and non-Python programs do not go through
Python's socket module; the harness also points the proxy variables at a closed loopback port
for curl-like tools, and uses a network namespace when it can, which covers everything.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback

LOG_ENV = "PGOLF_RERUN_NET_LOG"
# The harness points the proxy variables at this closed loopback port (see isolation.py).
DEAD_PROXY_PORT = 9
REFUSAL = "blocked by pgolf-audit rerun: no network access during a rerun"
LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

_originals: dict[str, object] = {}
_guard_file = os.path.abspath(__file__)


def _local_names() -> set[str]:
    names = set(LOCAL_NAMES)
    try:
        names.add(socket.gethostname().lower())
    except OSError:
        pass
    return names


_LOCAL = _local_names()


def is_local_host(host) -> bool:
    """Whether connecting to or resolving ``host`` stays on this machine without a lookup."""
    if host is None:
        return True  # getaddrinfo(None, port): the passive or loopback address
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    text = str(host).strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # IPv6 zone index
    if text in _LOCAL:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _is_ip_literal(host) -> bool:
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    text = str(host).strip().strip("[]").split("%", 1)[0]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _lookup_allowed(host) -> bool:
    """A lookup is harmless when it needs no name service: local names and IP literals (a
    connection to a remote literal is refused at connect, with its port)."""
    return is_local_host(host) or _is_ip_literal(host)


def _is_remote_address(sock, address) -> bool:
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return False
    if not isinstance(address, tuple) or not address:
        return False
    # A name given to connect() is resolved by the C library, not through getaddrinfo above,
    # so names are judged here too.
    return not is_local_host(address[0])


def _caller() -> str:
    """The submission's frame that made the call: the innermost frame under the working
    directory (the scratch copy), else the innermost frame outside this file and the stdlib."""
    frames = [f for f in traceback.extract_stack()[:-3] if os.path.abspath(f.filename) != _guard_file]
    cwd = os.getcwd() + os.sep
    for frame in reversed(frames):
        if os.path.abspath(frame.filename).startswith(cwd):
            return f"{os.path.relpath(frame.filename)}:{frame.lineno}"
    stdlib = os.path.dirname(os.__file__) + os.sep
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(stdlib):
            return f"{frame.filename}:{frame.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "unknown"


def _format_target(target) -> str:
    if isinstance(target, tuple) and len(target) >= 2:
        host, port = target[0], target[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(target)


def _record(call: str, target) -> str:
    where = _caller()
    entry = {"pid": os.getpid(), "call": call, "target": _format_target(target), "where": where}
    path = os.environ.get(LOG_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        except OSError:
            pass
    try:
        sys.stderr.write(f"pgolf-audit rerun: refused {call} to {entry['target']} from {where} (no network)\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return entry["target"]


def _refuse_connection(call: str, target):
    shown = _record(call, target)
    import errno

    raise ConnectionRefusedError(errno.ECONNREFUSED, f"{REFUSAL} ({call} {shown})")


def _refuse_lookup(call: str, host):
    _record(call, host)
    raise socket.gaierror(socket.EAI_NONAME, f"{REFUSAL} (name lookup of {host!r})")


def _getaddrinfo(host, *args, **kwargs):
    if not _lookup_allowed(host):
        _refuse_lookup("getaddrinfo", host)
    return _originals["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host):
    if not _lookup_allowed(host):
        _refuse_lookup("gethostbyname", host)
    return _originals["gethostbyname"](host)


def _gethostbyname_ex(host):
    if not _lookup_allowed(host):
        _refuse_lookup("gethostbyname_ex", host)
    return _originals["gethostbyname_ex"](host)


def _is_dead_proxy(address) -> bool:
    return isinstance(address, tuple) and len(address) >= 2 and address[1] == DEAD_PROXY_PORT and is_local_host(address[0])


def _connect(self, address):
    if _is_remote_address(self, address):
        _refuse_connection("connect", address)
    if _is_dead_proxy(address):
        _refuse_connection("connect through the proxy variables (destination unknown)", address)
    return _originals["connect"](self, address)


def _connect_ex(self, address):
    if _is_remote_address(self, address):
        _refuse_connection("connect_ex", address)
    if _is_dead_proxy(address):
        _refuse_connection("connect through the proxy variables (destination unknown)", address)
    return _originals["connect_ex"](self, address)


def _sendto(self, data, *args):
    address = args[-1] if args else None
    if _is_remote_address(self, address):
        _refuse_connection("sendto", address)
    return _originals["sendto"](self, data, *args)


def _sendmsg(self, buffers, *args):
    address = args[2] if len(args) >= 3 else None
    if address is not None and _is_remote_address(self, address):
        _refuse_connection("sendmsg", address)
    return _originals["sendmsg"](self, buffers, *args)


def _no_proxies():
    return {}


def _ignore_proxy_variables_in_python() -> None:
    """Python's HTTP clients (urllib, requests, httpx) read the proxy variables through
    urllib.request; give them none, so their connections go straight to the real destination,
    which the guard refuses and records by name. Programs that are not Python still see the
    dead proxy."""
    import urllib.request

    _originals["getproxies"] = urllib.request.getproxies
    _originals["getproxies_environment"] = urllib.request.getproxies_environment
    urllib.request.getproxies = _no_proxies
    urllib.request.getproxies_environment = _no_proxies


def install() -> None:
    """Replace the socket functions (idempotent)."""
    if _originals:
        return
    _ignore_proxy_variables_in_python()
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        _originals[name] = getattr(socket, name)
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        _originals[name] = getattr(socket.socket, name)
    socket.getaddrinfo = _getaddrinfo
    socket.gethostbyname = _gethostbyname
    socket.gethostbyname_ex = _gethostbyname_ex
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.socket.sendto = _sendto
    socket.socket.sendmsg = _sendmsg


def uninstall() -> None:
    """Put the originals back (tests only)."""
    if not _originals:
        return
    socket.getaddrinfo = _originals["getaddrinfo"]
    socket.gethostbyname = _originals["gethostbyname"]
    socket.gethostbyname_ex = _originals["gethostbyname_ex"]
    socket.socket.connect = _originals["connect"]
    socket.socket.connect_ex = _originals["connect_ex"]
    socket.socket.sendto = _originals["sendto"]
    socket.socket.sendmsg = _originals["sendmsg"]
    import urllib.request

    urllib.request.getproxies = _originals["getproxies"]
    urllib.request.getproxies_environment = _originals["getproxies_environment"]
    _originals.clear()


def _run_shadowed_sitecustomize() -> None:
    """Our folder comes first on sys.path, so it hides the environment's own sitecustomize
    (if any); run that one too, so the environment behaves as it would without the guard."""
    here = os.path.dirname(_guard_file)
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as f:
                    code = compile(f.read(), candidate, "exec")
                exec(code, {"__name__": "_shadowed_sitecustomize", "__file__": candidate})
            except Exception as exc:  # the environment's hook failing must not stop the run
                sys.stderr.write(f"pgolf-audit rerun: the environment's {candidate} failed: {exc}\n")
            return


if __name__ == "sitecustomize":
    install()
    _run_shadowed_sitecustomize()

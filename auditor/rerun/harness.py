"""One seed of a rerun: launch the record's script in a scratch copy and measure it from outside.

What happens, in order:

1. **Scratch copy.** The record folder is copied to ``scratch/seed<N>/`` (submissions must run
   from inside their folder). Files the artifact rule below would pick (shipped ``*.ptz``,
   ``final_model*``, ...) are left out, so a run cannot pass by leaving a shipped artifact in
   place; the rerun section lists them.
2. **Environment.** An allow-listed copy of the harness's environment (PATH, HOME, locale,
   CUDA/NCCL/torch/triton settings; no tokens or credentials), then SEED, the data paths and
   the user's ``--env`` values, ``PYTHONUNBUFFERED=1`` (lines arrive as they are printed),
   the isolation variables, a marker that every descendant inherits, per-seed compile caches
   (a fresh machine's cold start, the same for every seed) and, on ``--device cpu``, no
   visible GPU.
3. **Launch.** ``python -m torch.distributed.run --standalone --nproc_per_node=N train_gpt.py``
   (what ``torchrun`` runs), wrapped in the network namespace when one is used, in a new
   session, stdout and stderr merged into one pipe.
4. **Measurement.** A reader thread stamps every output line with ``time.monotonic()`` since
   launch; the main loop polls the scratch folder every ``POLL_S`` for artifact files,
   samples the process tree's resident memory and, on CUDA, ``nvidia-smi`` memory, and
   enforces the timeout. A file's write time is bounded by the poll that first saw it (or its
   change) and the poll before, and placed within those bounds by its modification time. On
   timeout the whole process tree (see ``processes``) gets SIGTERM, then SIGKILL; after a
   normal exit any process the run left behind is ended the same way and counted.
5. **Reading the result.** The captured output is parsed with the audit's own log parser
   (``parse_log``); the times of the stop line, the first training line and the headline
   metric line come from the line stamps; the script's own log files are copied out. Lines
   torchrun and torch.distributed print themselves (``is_launcher_line``) stay in the log but
   do not count as the script's output; after a crash, torchrun's failure summary is skipped
   to find the script's own traceback (``script_failure``).

Artifact rule: a file of the scratch folder that is new or changed since the copy, outside
``__pycache__``, not text or source (``.txt .log .py .json .md .csv .yaml .toml``), and either
named like a model artifact (``ARTIFACT_SUFFIXES`` or a name starting with ``final_model``) or
larger than 1,000,000 bytes. Of those, the artifact is the one whose size the script printed
for its compressed model (a ``Serialized model <format>: N bytes`` line with a format label, or
``Total submission size <format>`` minus the counted code bytes), else the one named as the
file the script writes and reads back for evaluation (``SeedSpec.artifact_names``: its
configured artifact path), else the newest compressed one (``COMPRESSED_SUFFIXES``). Nothing
else is: a run that stopped after writing its raw checkpoint (``final_model.pt``) wrote no
artifact, and the candidates are listed as such.

Times reported (seconds since launch unless said otherwise):
``startup_seconds`` to the start of compilation and warm-up (the script line before its first
warm-up line), or to the first training line (periodic validation or progress) when it prints
no warm-up lines; ``compile_warmup_seconds`` from there to the first training line;
``train_seconds`` to the end of training: the stop line (``stopping_early: ...``) or the first
artifact-like file being created, whichever comes first; ``train_loop_seconds`` from the first
training line to that point; ``quantization_seconds`` from the end of training to the
artifact's last write (``artifact_seconds``); ``final_metric_seconds`` to the headline metric
line; ``eval_seconds`` from the artifact's last write (else the end of training) to the
headline metric line; ``wall_seconds`` to exit.

About 720 lines, on purpose: the module is the one seed's life cycle above, in that order
(copy, environment, launch, watch, stop, measure, classify), and its steps share the seed's
state; split, the order of measurement would have to be read across files.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..parsers.logs import RunRecord, is_log_candidate, match_formats, parse_log
from .hardware import GpuMemorySampler
from .hparams import is_warmup_line, parse_hyperparameters
from .isolation import Isolation
from .processes import MARKER_ENV, end_run, run_processes

ENTRY_SCRIPT = "train_gpt.py"
POLL_S = 0.25
RSS_EVERY_S = 1.0
LOG_TAIL_LINES = 40
MAX_LINE_BYTES = 1 << 20
# Output kept (in memory and in the logs) per seed; a run printing more is cut there and the cut
# is reported, so a flood of output cannot exhaust the harness's memory or disk.
MAX_OUTPUT_BYTES = 256 << 20
EXIT_DRAIN_S = 3.0          # output still arriving after the launched process exits
ARTIFACT_MIN_BYTES = 1_000_000
ARTIFACT_SUFFIXES = (".ptz", ".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz", ".zst", ".zstd", ".xz",
                     ".lzma", ".br", ".gz", ".zlib", ".bz2", ".int8", ".int6")
COMPRESSED_SUFFIXES = (".ptz", ".zst", ".zstd", ".xz", ".lzma", ".br", ".gz", ".zlib", ".bz2")
NOT_ARTIFACT_SUFFIXES = (".txt", ".log", ".py", ".json", ".md", ".csv", ".yaml", ".yml", ".toml", ".sh")

# Inherited by the child: enough to find Python, CUDA and compilers, nothing that identifies
# or authenticates the person running the rerun.
ALLOWED_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "HOSTNAME",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CPATH", "LIBRARY_PATH", "LD_LIBRARY_PATH", "CC", "CXX", "CUDA_HOME",
    "CUDA_PATH", "CUDA_VISIBLE_DEVICES", "PYTHONHOME", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
})
ALLOWED_ENV_PREFIXES = ("LC_", "CUDA_", "NCCL_", "NVSHMEM_", "NVIDIA_", "TORCH_", "TORCHINDUCTOR_", "TRITON_",
                        "CUBLAS_", "CUDNN_", "KMP_", "OPENBLAS_")
# Set by torchrun for its workers; inherited values would confuse the new launch.
DISTRIBUTED_ENV = frozenset({"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                             "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"})
RESERVED_ENV = frozenset({"SEED", "PYTHONPATH", MARKER_ENV, "PYTHONUNBUFFERED"})

# Lines torchrun and torch.distributed print themselves, not the script: glog-style C++ and
# Python log lines of c10d/elastic ("[W1121 10:38:41.549 socket.cpp:207] ...",
# "W1121 10:38:41.549000 139 torch/distributed/run.py:766] ..."), and the OMP_NUM_THREADS banner.
# They are kept in the log but do not count as the script's output.
_LAUNCHER_LINE = re.compile(
    r"^(?:\[?[WIEF]\d{4} [\d:.]+ (?:\d+ )?[\w./-]+:\d+\]"
    r"|(?:WARNING|INFO|ERROR):torch\.distributed"
    r"|\*{5,}\s*$"
    r"|Setting OMP_NUM_THREADS environment variable)")


def is_launcher_line(text: str) -> bool:
    return bool(_LAUNCHER_LINE.match(text))


_TORCHRUN_FAILURE = re.compile(r"failed \(exitcode: ")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:: .*)?$")
MAX_EXCERPT_LINES = 25


def script_failure(lines: list[str]) -> dict[str, str | None]:
    """The script's own last words: its last traceback (torchrun's ChildFailedError summary,
    which follows a failed worker, is cut off first) and its last line of output."""
    cut = len(lines)
    for i, line in enumerate(lines):
        if is_launcher_line(line) and _TORCHRUN_FAILURE.search(line):
            cut = i
            break
    region = lines[:cut]
    error_line = excerpt = None
    for i, line in enumerate(region):
        if line.startswith("Traceback (most recent call last):"):
            j = i + 1
            while j < len(region) and (region[j].startswith((" ", "\t")) or not region[j].strip()):
                j += 1
            if j < len(region) and _EXCEPTION_LINE.match(region[j]) and "ChildFailedError" not in region[j]:
                error_line = _short(region[j])
                excerpt = "\n".join(_short(l) for l in region[max(i, j + 1 - MAX_EXCERPT_LINES):j + 1])
    script_lines = [l for l in region if l.strip() and not is_launcher_line(l)]
    return {"error_line": error_line, "error_excerpt": excerpt,
            "last_script_line": _short(script_lines[-1]) if script_lines else None}


@dataclass
class SeedSpec:
    """Everything needed to run one seed."""

    folder: Path                      # the record folder (never written to)
    seed: int
    nproc: int
    device: str                       # "cuda" or "cpu"
    out_dir: Path                     # this seed's logs go here
    scratch_dir: Path                 # the scratch copy is made here (must not exist)
    isolation: Isolation
    timeout_s: float
    python: str
    env: dict[str, str] = field(default_factory=dict)   # DATA_PATH, TOKENIZER_PATH, --env values
    entry: str = ENTRY_SCRIPT
    shim_dir: Path | None = None      # holds flash_attn_interface.py when --shim-flash-attn
    shim_returns: str = "out"
    code_bytes: int | None = None     # counted code bytes of the record (static audit rule)
    keep_scratch: bool = False
    artifact_names: tuple[str, ...] = ()   # file names the script writes and reads back as its artifact
    kill_grace_s: float = 5.0
    progress: Callable[[str], None] | None = None


@dataclass
class WatchedFile:
    """A new or changed file of the scratch folder, as the polls saw it.

    A poll bounds when the file was written: after the previous poll, at or before this one.
    Within those bounds the file's own modification time places the write precisely (a
    modification time outside them, e.g. one set back by the script, is clamped to them).
    """

    rel: str
    size: int
    mtime_ns: int
    first_seen_s: float          # poll that first saw it
    appeared_after_s: float      # the poll before that one
    first_mtime_s: float         # its modification time then, seconds since launch
    last_change_s: float         # poll that saw its last change
    changed_after_s: float
    last_mtime_s: float

    @property
    def created_s(self) -> float:
        return min(max(self.first_mtime_s, self.appeared_after_s), self.first_seen_s)

    @property
    def written_s(self) -> float:
        return min(max(self.last_mtime_s, self.changed_after_s), self.last_change_s)


def is_artifact_like(rel: str, size: int) -> bool:
    """The artifact rule (module docstring), for one new or changed file."""
    parts = rel.split("/")
    if "__pycache__" in parts or any(p.startswith(".") for p in parts):
        return False
    name = parts[-1].lower()
    if name.endswith(NOT_ARTIFACT_SUFFIXES):
        return False
    return name.endswith(ARTIFACT_SUFFIXES) or name.startswith("final_model") or size > ARTIFACT_MIN_BYTES


def _walk_files(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every regular file under root (no symlinks followed)."""
    found: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found[Path(entry.path).relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return found


def copy_record(folder: Path, dest: Path) -> list[str]:
    """Copy the record folder to ``dest``, leaving out shipped artifacts; returns what was left out."""
    excluded: list[str] = []

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = Path(directory) / name
            if name == "__pycache__":
                skipped.add(name)
                continue
            if path.is_file() and not path.is_symlink():
                rel = path.relative_to(folder).as_posix()
                if is_artifact_like(rel, path.stat().st_size):
                    skipped.add(name)
                    excluded.append(rel)
        return skipped

    shutil.copytree(folder, dest, symlinks=True, ignore=ignore)
    return sorted(excluded)


def child_environment(spec: SeedSpec, marker: str, net_log: Path, cache_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The child's environment and the names inherited from the harness's own."""
    inherited = {k: v for k, v in os.environ.items()
                 if (k in ALLOWED_ENV_NAMES or k.startswith(ALLOWED_ENV_PREFIXES)) and k not in DISTRIBUTED_ENV}
    env = dict(inherited)
    if spec.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    env["DEVICE"] = spec.device
    env.update(spec.isolation.environment(net_log))
    env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
    env["TRITON_CACHE_DIR"] = str(cache_dir / "triton")
    env.update(spec.env)
    paths = [str(spec.isolation.guard_dir)]
    if spec.shim_dir is not None:
        paths.append(str(spec.shim_dir))
        env["PGOLF_FA3_SHIM_RETURNS"] = spec.shim_returns
    # The guard and the shim come first; the caller's own PYTHONPATH (where the script's
    # dependencies may be installed) stays after them.
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["SEED"] = str(spec.seed)
    env[MARKER_ENV] = marker
    return env, sorted(inherited)


def launcher_argv(python: str, nproc: int, entry: str = ENTRY_SCRIPT) -> list[str]:
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", entry]


def display_command(nproc: int, entry: str = ENTRY_SCRIPT) -> str:
    return f"torchrun --standalone --nproc_per_node={nproc} {entry}"


def _rss_mib(pids: set[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total_kib / 1024.0


class _LineReader(threading.Thread):
    """Reads the child's output line by line and stamps each with seconds since launch."""

    def __init__(self, stream, started: float, sink: "queue.Queue[tuple[float, bytes] | None]"):
        super().__init__(name="rerun-output", daemon=True)
        self.stream, self.started, self.sink = stream, started, sink

    def run(self) -> None:
        try:
            while True:
                raw = self.stream.readline(MAX_LINE_BYTES)
                if not raw:
                    break
                self.sink.put((time.monotonic() - self.started, raw))
        except (OSError, ValueError):
            pass
        finally:
            self.sink.put(None)


def _decode_line(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


def _phase_of(line: str) -> str | None:
    groups = set()
    for fid in match_formats(line[:20_000]):
        if fid.startswith(("val_step", "train_step")):
            groups.add("training")
        elif fid.startswith("stop_"):
            groups.add("train_end")
        elif fid in ("final_colon", "final_eq"):
            groups.add("metric")
    for phase in ("metric", "train_end", "training"):
        if phase in groups:
            return phase
    return None


EXCERPT_LINE_CHARS = 300  # a self-extracting wrapper's exec line is kilobytes long


def _short(line: str) -> str:
    return line if len(line) <= EXCERPT_LINE_CHARS else line[:EXCERPT_LINE_CHARS] + f" … ({len(line):,} characters)"


def _tail(lines: list[str], n: int = LOG_TAIL_LINES) -> str:
    return "\n".join(_short(line) for line in lines[-n:])


def _compressed_size_lines(record: RunRecord | None) -> tuple[set[int], set[int]]:
    """Model and total sizes the script printed for its compressed model (a format label such
    as ``int8+zlib`` or ``quantized+brotli``); a bare ``Serialized model: N bytes`` is the raw
    checkpoint and says nothing about the artifact."""
    if record is None:
        return set(), set()
    models = {s.bytes for s in record.model_sizes if s.label and s.label != "raw"}
    totals = {s.bytes for s in record.total_sizes if s.label and s.label != "raw"}
    return models, totals


def _choose_artifact(candidates: list[WatchedFile], record: RunRecord | None, code_bytes: int | None,
                     artifact_names: tuple[str, ...] = ()) -> WatchedFile | None:
    """The artifact among the new files (module docstring): the file whose size the script
    printed as its compressed model; else the file the script reads back for evaluation (its
    configured artifact name); else the newest compressed file. A raw checkpoint is never the
    artifact by default: a run that wrote only ``final_model.pt`` wrote no artifact."""
    if not candidates:
        return None
    models, totals = _compressed_size_lines(record)
    exact = [c for c in candidates if c.size in models
             or (code_bytes is not None and c.size + code_bytes in totals)]
    if exact:
        return max(exact, key=lambda c: c.written_s)
    wanted = {PurePosixPath(n).name for n in artifact_names if n}
    named = [c for c in candidates if PurePosixPath(c.rel).name in wanted]
    if named:
        return max(named, key=lambda c: c.written_s)
    compressed = [c for c in candidates if c.rel.lower().endswith(COMPRESSED_SUFFIXES)]
    return max(compressed, key=lambda c: c.written_s) if compressed else None


def _read_network_attempts(path: Path) -> list[dict[str, Any]]:
    attempts = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return attempts
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            attempts.append({k: entry.get(k) for k in ("call", "target", "where", "pid")})
    return attempts


def _pick_run(text: str, name: str) -> tuple[RunRecord | None, Any]:
    log = parse_log(text, name)
    runs = [r for r in log.runs if r.headline is not None] or log.runs
    return (runs[-1] if runs else None), log


def run_seed(spec: SeedSpec) -> dict[str, Any]:
    """Run one seed and return its measurements (one entry of the rerun section's ``runs``)."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    say = spec.progress or (lambda _msg: None)
    marker = uuid.uuid4().hex
    net_log = spec.out_dir / "network_attempts.jsonl"
    cache_dir = spec.out_dir / "compile_cache"
    console_path = spec.out_dir / "console.log"
    timed_path = spec.out_dir / "console.timed.log"
    result: dict[str, Any] = {
        "seed": spec.seed, "status": None, "problems": [], "exit_code": None, "timed_out": False,
        "log_path": str(console_path), "timed_log_path": str(timed_path),
    }

    excluded = copy_record(spec.folder, spec.scratch_dir)
    result["excluded_from_copy"] = excluded
    before = _walk_files(spec.scratch_dir)
    env, inherited = child_environment(spec, marker, net_log, cache_dir)
    result["env_inherited"] = inherited
    argv = spec.isolation.wrap(launcher_argv(spec.python, spec.nproc, spec.entry))

    gpu_sampler = None
    if spec.device == "cuda":
        gpu_sampler = GpuMemorySampler()
        gpu_sampler.start()

    lines: list[str] = []
    stamps: list[float] = []
    watched: dict[str, WatchedFile] = {}
    phase_times: dict[str, float] = {}
    peak_rss = 0.0
    sink: "queue.Queue[tuple[float, bytes] | None]" = queue.Queue()
    started_wall = time.time()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=spec.scratch_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        if gpu_sampler:
            gpu_sampler.stop()
        result.update(status="launch_failed", problems=[f"could not start {argv[0]}: {exc}"])
        return result
    reader = _LineReader(proc.stdout, started, sink)
    reader.start()
    say("started")

    previous_poll = [0.0]

    def poll_folder(now: float) -> None:
        after = previous_poll[0]
        for rel, (size, mtime) in _walk_files(spec.scratch_dir).items():
            if before.get(rel) == (size, mtime) or not is_artifact_like(rel, size):
                continue
            mtime_s = mtime / 1e9 - started_wall
            seen = watched.get(rel)
            if seen is None:
                watched[rel] = WatchedFile(rel, size, mtime, now, after, mtime_s, now, after, mtime_s)
                if "artifact" not in phase_times:
                    phase_times["artifact"] = now
                    say(f"artifact {rel}")
            elif (seen.size, seen.mtime_ns) != (size, mtime):
                seen.size, seen.mtime_ns = size, mtime
                seen.last_change_s, seen.changed_after_s, seen.last_mtime_s = now, after, mtime_s
        previous_poll[0] = now

    eof = False
    exited_at: float | None = None
    last_poll = last_rss = 0.0
    timeout_report = drain_report = None
    lines_at_timeout: int | None = None
    kept_bytes = dropped_lines = 0
    with open(console_path, "w", encoding="utf-8") as console, open(timed_path, "w", encoding="utf-8") as timed:
        while True:
            try:
                item = sink.get(timeout=POLL_S)
            except queue.Empty:
                item = False
            if item is None:
                eof = True
            elif item:
                stamp, raw = item
                kept_bytes += len(raw)
                if kept_bytes > MAX_OUTPUT_BYTES:
                    dropped_lines += 1  # counted, not kept; the checks below still run
                else:
                    text = _decode_line(raw)
                    lines.append(text)
                    stamps.append(stamp)
                    console.write(text + "\n")
                    timed.write(f"{stamp:10.3f} {text}\n")
                    phase = _phase_of(text)
                    if phase and phase not in phase_times:
                        phase_times[phase] = stamp
                        say(phase.replace("_", " "))
            now = time.monotonic() - started
            if now - last_poll >= POLL_S:
                poll_folder(now)
                last_poll = now
            if now - last_rss >= RSS_EVERY_S:
                peak_rss = max(peak_rss, _rss_mib(run_processes(proc.pid, marker)))
                last_rss = now
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if eof and exited_at is not None:
                break
            if exited_at is not None and drain_report is None and now - exited_at > EXIT_DRAIN_S:
                # The launched process is gone but something it started still holds the output
                # pipe open: end those processes, which closes the pipe.
                drain_report = end_run(None, marker, spec.kill_grace_s)
            if drain_report is not None and now - exited_at > EXIT_DRAIN_S + spec.kill_grace_s + 10:
                break  # the pipe never closed; never hang the harness
            if timeout_report is None and exited_at is None and now > spec.timeout_s:
                result["timed_out"] = True
                lines_at_timeout = len(lines)
                say(f"timeout after {spec.timeout_s:.0f} s: ending the process tree")
                timeout_report = end_run(proc.pid, marker, spec.kill_grace_s)
                if proc.poll() is None:
                    proc.kill()
        wall = time.monotonic() - started
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(timeout=5)
    sweep = end_run(proc.pid, marker, spec.kill_grace_s)  # whatever outlived the launched process
    if gpu_sampler:
        gpu_sampler.stop()
    poll_folder(wall)

    result["exit_code"] = proc.returncode
    result["wall_seconds"] = round(wall, 3)
    result["lines"] = len(lines)
    result["output_lines_dropped"] = dropped_lines
    result["script_lines"] = sum(1 for line in lines if line.strip() and not is_launcher_line(line))
    result["processes_ended_on_timeout"] = timeout_report.found if timeout_report else 0
    result["leftover_processes"] = sweep.found + (drain_report.found if drain_report else 0)
    result["surviving_processes"] = sweep.survivors
    result["peak_rss_mib"] = round(peak_rss, 1) if peak_rss else None
    result.update(gpu_sampler.result() if gpu_sampler else {"peak_gpu_memory_mib": None})
    result["network_attempts"] = _read_network_attempts(net_log)

    # ---- what the run printed -------------------------------------------------------------
    text = "\n".join(lines) + ("\n" if lines else "")
    record, log = _pick_run(text, "console.log")
    source = "console"
    script_logs = _copy_script_logs(spec, before)
    result["script_logs"] = [str(p) for p in script_logs]
    if (record is None or record.headline is None) and script_logs:
        for path in script_logs:
            candidate, _ = _pick_run(path.read_text(encoding="utf-8", errors="replace"), path.name)
            if candidate is not None and candidate.headline is not None:
                record, source = candidate, f"script log {path.name}"
                break
    result["metrics_source"] = source if record is not None and record.headline is not None else None

    def stamp_of(line: int | None) -> float | None:
        if source != "console" or line is None or not (1 <= line <= len(stamps)):
            return None
        return round(stamps[line - 1], 3)

    headline = record.headline if record else None
    result["val_bpb"] = headline.val_bpb if headline else None
    result["val_loss"] = headline.val_loss if headline else None
    result["headline_label"] = headline.label if headline else None
    result["steps"] = record.steps if record else None
    result["reported_train_seconds"] = round(record.train_time_ms / 1000.0, 3) if record and record.train_time_ms is not None else None
    result["reported_step_avg_ms"] = record.step_avg_ms if record else None
    reported_eval = None
    if record is not None:
        if record.total_eval_time_s is not None:
            reported_eval = record.total_eval_time_s
        elif headline is not None and headline.eval_time_ms is not None:
            reported_eval = headline.eval_time_ms / 1000.0
    result["reported_eval_seconds"] = round(reported_eval, 3) if reported_eval is not None else None
    result["reported_artifact_bytes"] = record.total_bytes if record else None
    result["reported_model_bytes"] = record.model_bytes if record else None
    result["reported_code_bytes"] = record.code_bytes if record else None

    # ---- external times -------------------------------------------------------------------
    stop_at = stamp_of(record.train_time_line) if record and record.train_time_source == "stopping_early" else None
    first_artifact = min((w.created_s for w in watched.values()), default=None)
    ends = [t for t in (stop_at, first_artifact) if t is not None]
    train_end = min(ends) if ends else None
    result["train_end_source"] = (None if train_end is None else
                                  "stop line" if train_end == stop_at else "artifact written")
    first_training = phase_times.get("training")
    result["train_seconds"] = round(train_end, 3) if train_end is not None else None
    result["train_loop_seconds"] = (round(train_end - first_training, 3)
                                    if train_end is not None and first_training is not None and train_end >= first_training
                                    else None)
    candidates = sorted(watched.values(), key=lambda w: w.created_s)
    artifact = _choose_artifact(candidates, record, spec.code_bytes, spec.artifact_names)
    result["artifact_candidates"] = [
        {"path": w.rel, "bytes": w.size, "created_seconds": round(w.created_s, 3),
         "written_seconds": round(w.written_s, 3), "is_artifact": w is artifact} for w in candidates]
    artifact_at = round(artifact.written_s, 3) if artifact else None
    result["artifact_path"] = artifact.rel if artifact else None
    result["artifact_seconds"] = artifact_at
    final_at = stamp_of(headline.line) if headline else None
    result["final_metric_seconds"] = final_at
    eval_start = artifact_at if artifact_at is not None else train_end
    result["eval_seconds"] = (round(final_at - eval_start, 3)
                              if final_at is not None and eval_start is not None and final_at >= eval_start else None)
    result.update(_phases(lines if source == "console" else [], stamps, first_training, train_end, artifact_at,
                          final_at))
    result["hyperparameters"] = parse_hyperparameters(text)

    # ---- bytes ----------------------------------------------------------------------------
    if artifact is not None:
        path = spec.scratch_dir / artifact.rel
        size = path.stat().st_size if path.is_file() else artifact.size
        result["artifact_file_bytes"] = size
        result["artifact_sha256"] = _sha256(path) if path.is_file() else None
    else:
        result["artifact_file_bytes"] = None
        result["artifact_sha256"] = None
    result["code_bytes"] = spec.code_bytes
    result["artifact_bytes"] = (result["artifact_file_bytes"] + spec.code_bytes
                                if result["artifact_file_bytes"] is not None and spec.code_bytes is not None else None)

    result["log_tail"] = _tail(lines)
    # After a timeout, what follows the kill (tracebacks of the signalled processes) is ours.
    result.update(script_failure(lines if lines_at_timeout is None else lines[:lines_at_timeout]))
    result["status"], result["problems"] = classify(result)
    (spec.out_dir / "measurements.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not spec.keep_scratch:
        shutil.rmtree(spec.scratch_dir, ignore_errors=True)
        shutil.rmtree(cache_dir, ignore_errors=True)  # compiled kernels: large, and rebuilt per seed anyway
    say(f"done: {result['status']}")
    return result


def _phases(lines: list[str], stamps: list[float], first_training: float | None, train_end: float | None,
            artifact_at: float | None, final_at: float | None) -> dict[str, Any]:
    """The run's phases, from the stamps of its own lines and the files it wrote.

    The first warm-up line (``warmup_step: 1/20``) is printed after the first compiled step, so
    compilation and warm-up run from the script line before it to the first training line;
    startup is everything before that (process start, imports, data, model). A script without
    warm-up lines has no separate compile phase: its compilation falls into startup or the loop.
    """
    warmup_index = next((i for i, line in enumerate(lines) if is_warmup_line(line)), None)
    compile_start = None
    if warmup_index is not None and first_training is not None:
        before = [i for i in range(warmup_index) if lines[i].strip() and not is_launcher_line(lines[i])]
        compile_start = stamps[before[-1]] if before else 0.0
        if compile_start > first_training:
            compile_start = None
    startup = compile_start if compile_start is not None else first_training

    def span(a: float | None, b: float | None) -> float | None:
        return round(b - a, 3) if a is not None and b is not None and b >= a else None

    return {
        "startup_seconds": round(startup, 3) if startup is not None else None,
        "compile_warmup_seconds": span(compile_start, first_training),
        "warmup_lines": sum(1 for line in lines if is_warmup_line(line)),
        "quantization_seconds": span(train_end, artifact_at),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_script_logs(spec: SeedSpec, before: dict[str, tuple[int, int]]) -> list[Path]:
    """The script's own new or changed log files (logs/*.txt and the like), copied out."""
    copied = []
    target = spec.out_dir / "script_logs"
    for rel, stat in sorted(_walk_files(spec.scratch_dir).items()):
        if before.get(rel) == stat or not is_log_candidate(rel):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(spec.scratch_dir / rel, dest)
        except OSError:
            continue
        copied.append(dest)
    return copied


def classify(run: dict[str, Any]) -> tuple[str, list[str]]:
    """The run's status (the first problem) and every problem, in words."""
    problems = []
    if run.get("status") == "launch_failed":
        return "launch_failed", list(run.get("problems") or [])
    if run.get("timed_out"):
        problems.append("timeout")
    elif run.get("exit_code") not in (0, None):
        problems.append("crashed")
    if not run.get("script_lines", run.get("lines")):
        problems.append("no_output")
    if run.get("val_bpb") is None:
        problems.append("no_metric")
    if run.get("artifact_path") is None:
        problems.append("no_artifact")
    if run.get("network_attempts"):
        problems.append("network_attempt")
    return (problems[0] if problems else "ok"), problems


__all__ = ["SeedSpec", "run_seed", "copy_record", "is_artifact_like", "child_environment", "launcher_argv",
           "display_command", "classify", "is_launcher_line", "script_failure"]

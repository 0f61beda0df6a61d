"""A whole rerun: claims from the static audit, isolation, shim, calibration, every seed.

``run_rerun(request)`` returns the rerun section of the audit JSON (a plain dict) and writes it
to ``OUT/rerun.json``. Layout of the output folder:

    OUT/rerun.json                      the section (also embedded in the audit JSON)
    OUT/pythonpath/sitecustomize.py     the network guard the children import
    OUT/shim/flash_attn_interface.py    with --shim-flash-attn
    OUT/seed<N>/console.log             everything the run printed, as printed
    OUT/seed<N>/console.timed.log       the same lines, each prefixed with seconds since launch
    OUT/seed<N>/script_logs/...         log files the script wrote in its folder
    OUT/seed<N>/network_attempts.jsonl  refused network calls, if any
    OUT/seed<N>/measurements.json       that seed's entry of ``runs``
    OUT/calibration/...                 with --calibrate
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import RERUN_SCHEMA_VERSION
from .compare import run_comparison, summarize
from .fa3_usage import fa3_usage
from .hardware import describe_hardware
from .harness import ENTRY_SCRIPT, RESERVED_ENV, SeedSpec, display_command, launcher_argv, run_seed
from .isolation import NAMESPACE, prepare_isolation

DEFAULT_SEEDS = (42,)
DEFAULT_TIMEOUT_S = 1800.0
HEARTBEAT_S = 30.0
PREFLIGHT_TIMEOUT_S = 180.0


class RerunSetupError(Exception):
    """The rerun cannot start because of its input (bad folder, bad option): a usage error."""


@dataclass
class RerunRequest:
    folder: Path
    nproc: int
    device: str = "cuda"
    seeds: list[int] | None = None
    data_path: str | None = None
    tokenizer_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    shim_flash_attn: bool = False
    calibrate: bool = False
    calibrate_steps: int | None = None
    out_dir: Path | None = None
    isolation: str = "auto"
    python: str = sys.executable
    keep_scratch: bool = False
    display_path: str | None = None
    progress: Callable[[str], None] | None = None


class Progress:
    """Terminal progress for long runs: a line per phase change and a heartbeat while running."""

    def __init__(self, emit: Callable[[str], None] | None, total: int):
        self.emit, self.total = emit, total
        self.label = ""
        self.phase = ""
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _line(self, text: str) -> None:
        if self.emit:
            elapsed = int(time.monotonic() - self.started)
            self.emit(f"[rerun] {self.label} {elapsed // 60:02d}:{elapsed % 60:02d} {text}")

    def begin(self, label: str) -> Callable[[str], None]:
        self.label, self.phase, self.started = label, "starting", time.monotonic()
        self._stop.clear()
        if self.emit:
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()

        def update(phase: str) -> None:
            self.phase = phase
            self._line(phase)

        return update

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._line(f"still running ({self.phase})")

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)


def gather_claims(ctx) -> dict[str, Any]:
    """Claimed val_bpb (mean and per seed), steps, times and bytes: submission.json first,
    the folder's logs for what it leaves out."""
    seeds: dict[str, dict[str, Any]] = {}
    claims = ctx.submission
    sources = []
    if claims is not None and claims.seed_claims:
        sources.append(claims.path)
        for c in claims.seed_claims:
            seeds[str(c.seed)] = {"val_bpb": c.val_bpb, "steps": c.steps, "train_seconds": c.train_time_s,
                                  "eval_seconds": c.eval_time_s, "artifact_bytes": c.artifact_bytes}
    from_logs = False
    for run in ctx.scored_runs:
        if run.seed is None or run.headline is None:
            continue
        entry = seeds.setdefault(str(run.seed), {})
        rec = run.record
        logged = {"val_bpb": run.headline.val_bpb, "steps": rec.steps,
                  "train_seconds": round(rec.train_time_ms / 1000.0, 3) if rec.train_time_ms is not None else None,
                  "eval_seconds": round(run.headline.eval_time_ms / 1000.0, 3) if run.headline.eval_time_ms else None,
                  "artifact_bytes": rec.total_bytes}
        for key, value in logged.items():
            if entry.get(key) is None and value is not None:
                entry[key] = value
                from_logs = True
        entry.setdefault("log", run.path)
    if from_logs:
        sources.append("logs")
    values = [s["val_bpb"] for s in seeds.values() if s.get("val_bpb") is not None]
    mean = claims.val_bpb if claims is not None and claims.val_bpb is not None else (
        round(statistics.fmean(values), 8) if values else None)
    order = [str(s) for s in (claims.seeds if claims is not None else [])]
    ordered = {k: seeds[k] for k in order if k in seeds} | {k: v for k, v in seeds.items() if k not in order}
    return {"val_bpb": mean, "seeds": ordered, "sources": sources,
            "hardware": claims.hardware if claims is not None else None}


def default_seeds(claims: dict[str, Any]) -> list[int]:
    seeds = [int(s) for s in claims.get("seeds", {}) if str(s).lstrip("-").isdigit()]
    return seeds or list(DEFAULT_SEEDS)


@functools.lru_cache(maxsize=8)
def preflight(python: str, device: str) -> tuple[dict[str, Any] | None, str | None]:
    """The child's Python, torch and CUDA, or why torchrun cannot run at all (an
    infrastructure failure, not the submission's). Asked once per interpreter and device."""
    code = ("import json, platform, torch, torch.distributed.run; "
            "info = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda}; "
            + ("info['cuda_available'] = torch.cuda.is_available(); info['cuda_devices'] = torch.cuda.device_count(); "
               if device == "cuda" else "") + "print(json.dumps(info))")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else None
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=PREFLIGHT_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{python} could not run: {exc}"
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"{python} cannot import torch.distributed.run: {last[0]}"
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"{python}: unexpected preflight output {out.stdout[-200:]!r}"
    if device == "cuda" and not info.get("cuda_available"):
        return info, "--device cuda but torch sees no CUDA device"
    return info, None


def run_rerun(req: RerunRequest) -> dict[str, Any]:
    from pgolf_audit.context import AuditContext, AuditOptions
    from pgolf_audit.folder import FolderError, RecordFolder

    folder = req.folder.resolve()
    if not folder.is_dir():
        raise RerunSetupError(f"{req.folder}: not a directory")
    if not (folder / ENTRY_SCRIPT).is_file():
        raise RerunSetupError(f"{req.folder}: no {ENTRY_SCRIPT} (submissions run as `{display_command(req.nproc)}`)")
    reserved = sorted(set(req.env) & RESERVED_ENV)
    if reserved:
        raise RerunSetupError(f"--env cannot set {', '.join(reserved)} (the harness sets them)")
    try:
        ctx = AuditContext(RecordFolder.open(folder), AuditOptions(), req.display_path or str(req.folder))
    except FolderError as exc:
        raise RerunSetupError(f"{req.folder}: {exc}") from None
    claims = gather_claims(ctx)
    seeds = list(req.seeds) if req.seeds else default_seeds(claims)
    out = (req.out_dir or Path(tempfile.mkdtemp(prefix="pgolf-rerun-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)

    env = dict(req.env)
    if req.data_path:
        env["DATA_PATH"] = str(Path(req.data_path).expanduser().resolve())
    if req.tokenizer_path:
        env["TOKENIZER_PATH"] = str(Path(req.tokenizer_path).expanduser().resolve())
    accounting = ctx.code_accounting if ctx.code is not None else None
    code = ({"counted_bytes": accounting.total_bytes, "files": [{"path": f.path, "bytes": f.bytes} for f in accounting.files],
             "rule": "train_gpt.py plus every local file it imports, executes or builds (the static audit's rule)"}
            if accounting is not None else {"counted_bytes": None, "error": ctx.code_error or ctx.code_parse_error})
    usage = fa3_usage(ctx.code_module if ctx.code is not None else None)

    rerun: dict[str, Any] = {
        "schema_version": RERUN_SCHEMA_VERSION,
        "folder": req.display_path or str(req.folder),
        "command": display_command(req.nproc),
        "launcher": launcher_argv(req.python, req.nproc),
        "nproc": req.nproc,
        "device": req.device,
        "seeds": seeds,
        "timeout_seconds": req.timeout_s,
        "out_dir": str(out),
        "env": env,
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "finished_at": None,
        "harness_python": platform.python_version(),
        "software": None,
        "hardware": describe_hardware(req.device, req.nproc),
        "isolation": None,
        "shim": {"flash_attn": False, "usage": usage.to_json()},
        "calibration": None,
        "claims": claims,
        "code": code,
        "limits": ctx.limits.to_json(),
        "runs": [],
        "summary": None,
        "infrastructure_error": None,
    }

    def finish() -> dict[str, Any]:
        rerun["summary"] = summarize(rerun, rerun["limits"])
        rerun["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        (out / "rerun.json").write_text(json.dumps(rerun, indent=2) + "\n", encoding="utf-8")
        return rerun

    say = req.progress
    if say:
        say(f"[rerun] {rerun['folder']}: seeds {', '.join(map(str, seeds))} on {rerun['hardware']['description']}; "
            f"logs under {out}")
    software, problem = preflight(req.python, req.device)
    rerun["software"] = dict(software) if software else None
    if problem:
        rerun["infrastructure_error"] = problem
        return finish()
    visible = rerun["hardware"]["gpu_count"]
    if req.device == "cuda" and visible and req.nproc > visible:
        rerun["infrastructure_error"] = f"--nproc {req.nproc} but only {visible} GPU(s) are visible"
        return finish()

    isolation = prepare_isolation(out, req.python, "guard" if req.isolation == "guard" else "auto")
    rerun["isolation"] = isolation.to_json()
    if req.isolation == "namespace" and isolation.method != NAMESPACE:
        rerun["infrastructure_error"] = f"--isolation namespace: {isolation.namespace_note}"
        return finish()

    shim_dir = None
    if req.shim_flash_attn:
        from importlib import resources

        shim_dir = out / "shim"
        shim_dir.mkdir(exist_ok=True)
        source = resources.files("pgolf_audit.rerun").joinpath("flash_attn_shim.py").read_text(encoding="utf-8")
        (shim_dir / "flash_attn_interface.py").write_text(source, encoding="utf-8")
        rerun["shim"] = {"flash_attn": True, "returns": "tuple" if usage.tuple_style else "out",
                         "module": str(shim_dir / "flash_attn_interface.py"), "usage": usage.to_json()}

    progress = Progress(say, len(seeds))
    if req.calibrate:
        update = progress.begin("calibration")
        try:
            from .calibrate import run_calibration

            rerun["calibration"] = run_calibration(device=req.device, nproc=req.nproc, python=req.python, out_dir=out,
                                                   isolation=isolation, steps=req.calibrate_steps,
                                                   timeout_s=req.timeout_s, progress=update)
        finally:
            progress.end()

    for index, seed in enumerate(seeds, 1):
        update = progress.begin(f"seed {seed} ({index}/{len(seeds)})")
        try:
            spec = SeedSpec(folder=folder, seed=seed, nproc=req.nproc, device=req.device, out_dir=out / f"seed{seed}",
                            scratch_dir=out / "scratch" / f"seed{seed}", isolation=isolation, timeout_s=req.timeout_s,
                            python=req.python, env=env, shim_dir=shim_dir,
                            shim_returns=(rerun["shim"].get("returns") or "out"),
                            code_bytes=code.get("counted_bytes"), keep_scratch=req.keep_scratch, progress=update)
            run = run_seed(spec)
        finally:
            progress.end()
        run.update({k: v for k, v in run_comparison(rerun, run).items() if k != "seed"})
        rerun["runs"].append(run)
    if not req.keep_scratch:
        scratch = out / "scratch"
        if scratch.is_dir() and not any(scratch.iterdir()):
            scratch.rmdir()
    return finish()

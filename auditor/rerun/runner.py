"""A whole rerun: claims from the static audit, isolation, shim, calibration, every seed.

``run_rerun(request)`` returns a ``RerunResult`` (``result.py``) and writes its JSON form, the
rerun section of the audit JSON, to ``OUT/rerun.json``. Layout of the output folder:

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
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..context import AuditContext, AuditOptions
from ..folder import FolderError, RecordFolder
from .calibrate import run_calibration
from .compare import run_comparison, summarize
from .config import (ConfigError, RerunConfig, build_config, missing_data_paths, requested_hyperparameters,
                     requested_paths)
from .fa3_usage import fa3_usage
from .hardware import describe_hardware
from .harness import COMPRESSED_SUFFIXES, ENTRY_SCRIPT, RESERVED_ENV, SeedSpec, display_command, launcher_argv, run_seed
from .hparams import diff_hyperparameters, parse_hyperparameters
from .isolation import NAMESPACE, prepare_isolation
from .result import RerunResult

DEFAULT_SEEDS = (42,)
# The default per-seed timeout: compile_allowance + factor x (claimed train + claimed eval), where
# factor is the calibration's speed factor, else an estimate from the process count when the
# claims were made on the 8-GPU target (the same work on fewer GPUs), else 1. Compilation is not
# in the claimed times (the scripts time from after their warm-up) and is slower on a cold cache.
COMPILE_ALLOWANCE_S = {"cuda": 600.0, "cpu": 120.0}
TARGET_GPUS = 8
FALLBACK_TRAIN_S = FALLBACK_EVAL_S = 600.0
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
    data_root: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None      # None: derived (see COMPILE_ALLOWANCE_S)
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


def claimed_hyperparameters(ctx) -> dict[str, dict[str, Any]]:
    """seed -> {"log": path, "values": the hyperparameters its claimed log printed}."""
    out: dict[str, dict[str, Any]] = {}
    for run in ctx.runs:
        if run.seed is None or str(run.seed) in out:
            continue
        text = ctx.read_text(run.path)
        values = parse_hyperparameters(text) if text else {}
        if values:
            out[str(run.seed)] = {"log": run.path, "values": values,
                                  "world_size": getattr(run.record, "world_size", None)}
    return out


_ARTIFACT_NAME = re.compile(r"""['"]([\w./-]+?(?:%s))['"]""" % "|".join(re.escape(s) for s in COMPRESSED_SUFFIXES))


def artifact_names(source: str | None, env: dict[str, str], claimed: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """File names the script writes and reads back as its artifact: configured values ending in a
    compressed suffix (ARTIFACT_PATH=final_model_seed42.int8.ptz, quantized_model_path:
    final_model.int6.ptz) and such string literals of its code."""
    names = {v for v in env.values() if v.lower().endswith(COMPRESSED_SUFFIXES)}
    for entry in claimed.values():
        names |= {v for v in entry["values"].values() if v.lower().endswith(COMPRESSED_SUFFIXES)}
    if source:
        names |= {m.group(1) for m in _ARTIFACT_NAME.finditer(source)}
    return tuple(sorted(names))


def derive_timeout(claims: dict[str, Any], config: RerunConfig, device: str, nproc: int,
                   calibration: dict[str, Any] | None) -> dict[str, Any]:
    """The default per-seed timeout (see COMPILE_ALLOWANCE_S), with its formula in words."""
    seeds = [c for c in (claims.get("seeds") or {}).values() if isinstance(c, dict)]
    trains = [c["train_seconds"] for c in seeds if c.get("train_seconds")]
    evals = [c["eval_seconds"] for c in seeds if c.get("eval_seconds")]
    train = max(trains) if trains else FALLBACK_TRAIN_S
    evaluation = max(evals) if evals else FALLBACK_EVAL_S
    hardware = str(claims.get("hardware") or "")
    factor_value = (calibration or {}).get("speed_factor")
    if factor_value:
        factor, why = float(factor_value), "the calibration's speed factor"
    elif device == "cuda" and nproc < TARGET_GPUS and (not hardware or "H100" in hardware):
        factor, why = TARGET_GPUS / nproc, f"an estimate: the work of {TARGET_GPUS} GPUs on {nproc} (no --calibrate)"
    else:
        factor, why = 1.0, "claims made on hardware like this one" if hardware else "no calibration"
    caps = []
    for seed_config in config.seeds.values():
        try:
            caps.append(float(seed_config.env["MAX_WALLCLOCK_SECONDS"]))
        except (KeyError, ValueError):
            pass
    train_budget = train * factor
    cap_text = ""
    if caps and 0 < max(caps) < train_budget:
        train_budget = max(caps)
        cap_text = f", capped by MAX_WALLCLOCK_SECONDS={max(caps):g}"
    allowance = COMPILE_ALLOWANCE_S.get(device, COMPILE_ALLOWANCE_S["cuda"])
    total = allowance + train_budget + evaluation * factor
    formula = (f"{allowance:.0f} s startup/compile allowance + {train_budget:.0f} s training ({train:g} s claimed x "
               f"{factor:g}{cap_text}) + {evaluation * factor:.0f} s evaluation ({evaluation:g} s claimed x {factor:g}); "
               f"factor: {why}" + ("" if trains and evals else "; the track's limits stand in for missing claims"))
    return {"seconds": round(total, 1), "source": "derived", "formula": formula, "factor": factor,
            "compile_allowance_seconds": allowance}


def compare_configuration(run: dict[str, Any], seed: int, claimed: dict[str, dict[str, Any]],
                          requested: dict[str, str], paths: list[str], nproc: int) -> dict[str, Any]:
    """The rerun's printed hyperparameters against the claimed log's for this seed."""
    printed = run.get("hyperparameters") or {}
    entry = claimed.get(str(seed))
    asked = dict(requested)
    if entry is None and claimed:
        entry = next(iter(claimed.values()))
        asked["seed"] = "--seeds (no claimed log for this seed; compared with another seed's)"
    if entry is None:
        return {"status": "unavailable", "note": "no claimed log of this folder prints its hyperparameters"}
    if not printed:
        return {"status": "unavailable", "claimed_log": entry["log"],
                "note": "the rerun printed no hyperparameters (it stopped before, or the script prints none)"}
    claimed_world = entry["values"].get("world_size") or entry.get("world_size")
    topology_changed = str(claimed_world) != str(nproc) if claimed_world is not None else True
    diff = diff_hyperparameters(entry["values"], printed, requested=asked, requested_paths=paths,
                                topology_changed=topology_changed)
    return {"status": "differs" if diff["unrequested"] else "same", "claimed_log": entry["log"], **diff}


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


def run_rerun(req: RerunRequest) -> RerunResult:
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
    source = ctx.code.source if ctx.code is not None else None
    readme = ctx.read_text(ctx.readme_file) if ctx.readme_file else None
    try:
        config = build_config(folder, readme, source, seeds, data_root=req.data_root, data_path=req.data_path,
                              tokenizer_path=req.tokenizer_path, env=req.env)
    except ConfigError as exc:
        raise RerunSetupError(str(exc)) from None
    claimed_hparams = claimed_hyperparameters(ctx)
    requested = requested_hyperparameters(config, source)
    data_paths = requested_paths(config)
    out = (req.out_dir or Path(tempfile.mkdtemp(prefix="pgolf-rerun-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)

    env = dict(config.seeds[seeds[0]].env)
    accounting = ctx.code_accounting if ctx.code is not None else None
    code = ({"counted_bytes": accounting.total_bytes, "files": [{"path": f.path, "bytes": f.bytes} for f in accounting.files],
             "rule": "train_gpt.py plus every local file it imports, executes or builds (the static audit's rule)"}
            if accounting is not None else {"counted_bytes": None, "error": ctx.code_error or ctx.code_parse_error})
    usage = fa3_usage(ctx.code_module if ctx.code is not None else None)

    rerun = RerunResult(
        folder=req.display_path or str(req.folder),
        command=display_command(req.nproc),
        launcher=launcher_argv(req.python, req.nproc),
        nproc=req.nproc,
        device=req.device,
        seeds=seeds,
        timeout_seconds=req.timeout_s,
        timeout=({"seconds": req.timeout_s, "source": "--timeout", "formula": "given with --timeout"}
                 if req.timeout_s else None),
        out_dir=str(out),
        env=env,
        config={**config.to_json(), "claimed_logs": {k: v["log"] for k, v in claimed_hparams.items()},
                "missing_data_paths": missing_data_paths(config)},
        started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        harness_python=platform.python_version(),
        hardware=describe_hardware(req.device, req.nproc),
        shim={"flash_attn": False, "usage": usage.to_json()},
        claims=claims,
        code=code,
        limits=ctx.limits.to_json(),
    )

    if rerun.timeout is None:
        rerun.timeout = derive_timeout(claims, config, req.device, req.nproc, None)
        rerun.timeout_seconds = rerun.timeout["seconds"]
    else:
        derived = derive_timeout(claims, config, req.device, req.nproc, None)
        rerun.timeout["formula"] = (f"given with --timeout; the default would be {derived['seconds']:.0f} s: "
                                    f"{derived['formula']}")

    def finish() -> RerunResult:
        rerun.summary = summarize(rerun, rerun.limits)
        rerun.finished_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        (out / "rerun.json").write_text(json.dumps(rerun.to_json(), indent=2) + "\n", encoding="utf-8")
        return rerun

    say = req.progress
    if say:
        say(f"[rerun] {rerun.folder}: seeds {', '.join(map(str, seeds))} on {rerun.hardware['description']}; "
            f"logs under {out}")
    software, problem = preflight(req.python, req.device)
    rerun.software = dict(software) if software else None
    if problem:
        rerun.infrastructure_error = problem
        return finish()
    visible = rerun.hardware["gpu_count"]
    if req.device == "cuda" and visible and req.nproc > visible:
        rerun.infrastructure_error = f"--nproc {req.nproc} but only {visible} GPU(s) are visible"
        return finish()

    isolation = prepare_isolation(out, req.python, "guard" if req.isolation == "guard" else "auto")
    rerun.isolation = isolation.to_json()
    if req.isolation == "namespace" and isolation.method != NAMESPACE:
        rerun.infrastructure_error = f"--isolation namespace: {isolation.namespace_note}"
        return finish()

    shim_dir = None
    if req.shim_flash_attn:
        from importlib import resources

        shim_dir = out / "shim"
        shim_dir.mkdir(exist_ok=True)
        source = resources.files("pgolf_audit.rerun").joinpath("flash_attn_shim.py").read_text(encoding="utf-8")
        (shim_dir / "flash_attn_interface.py").write_text(source, encoding="utf-8")
        rerun.shim = {"flash_attn": True, "returns": "tuple" if usage.tuple_style else "out",
                         "module": str(shim_dir / "flash_attn_interface.py"), "usage": usage.to_json()}

    progress = Progress(say, len(seeds))
    if req.calibrate:
        update = progress.begin("calibration")
        try:
            rerun.calibration = run_calibration(device=req.device, nproc=req.nproc, python=req.python, out_dir=out,
                                                isolation=isolation, steps=req.calibrate_steps,
                                                timeout_s=rerun.timeout_seconds, progress=update)
        finally:
            progress.end()

    if req.timeout_s is None and (rerun.calibration or {}).get("speed_factor"):
        rerun.timeout = derive_timeout(claims, config, req.device, req.nproc, rerun.calibration)
        rerun.timeout_seconds = rerun.timeout["seconds"]
    if say:
        say(f"[rerun] per-seed timeout {rerun.timeout_seconds:.0f} s: {rerun.timeout['formula']}")
        for name, item in config.overrides.items():
            say(f"[rerun] override {name}={item['value']} ({item['source']})")
        for name, value in rerun.config["missing_data_paths"].items():
            say(f"[rerun] warning: {name}={value} does not exist here (give --data-root DIR)")

    for index, seed in enumerate(seeds, 1):
        update = progress.begin(f"seed {seed} ({index}/{len(seeds)})")
        seed_env = config.seeds[seed].env
        try:
            spec = SeedSpec(folder=folder, seed=seed, nproc=req.nproc, device=req.device, out_dir=out / f"seed{seed}",
                            scratch_dir=out / "scratch" / f"seed{seed}", isolation=isolation,
                            timeout_s=rerun.timeout_seconds, python=req.python, env=seed_env, shim_dir=shim_dir,
                            shim_returns=(rerun.shim.get("returns") or "out"),
                            code_bytes=code.get("counted_bytes"), keep_scratch=req.keep_scratch,
                            artifact_names=artifact_names(source, seed_env, claimed_hparams), progress=update)
            run = run_seed(spec)
        finally:
            progress.end()
        run["config_diff"] = compare_configuration(run, seed, claimed_hparams, requested, data_paths, req.nproc)
        if say and run["config_diff"]["status"] == "differs":
            say(f"[rerun] seed {seed}: hyperparameters differ from the claimed log without being asked for: "
                + ", ".join(d["name"] for d in run["config_diff"]["unrequested"]))
        run.update({k: v for k, v in run_comparison(rerun, run).items() if k != "seed"})
        rerun.runs.append(run)
    if not req.keep_scratch:
        scratch = out / "scratch"
        if scratch.is_dir() and not any(scratch.iterdir()):
            scratch.rmdir()
    return finish()

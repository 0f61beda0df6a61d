"""Reproduced vs claimed: pure functions over a ``RerunResult`` (no I/O, no torch).

The runner stores ``summarize``'s result in the rerun's ``summary`` for the review; the PG8xx
checks call the same functions on the rerun they are given, so a check never trusts a
stored verdict and the rule examples need only raw measurements.

Policy (in one place):

- **Claimed band.** The claimed seeds' values span [min, max]; a reproduced value agrees when
  it lies within that span widened by ``BPB_TOLERANCE`` on both sides (same-seed reruns on
  GPUs differ by about 1e-4 to 5e-4 bpb from nondeterministic kernels; claims are often
  printed to 4 decimals). With one claimed seed the band is that value +- the tolerance.
- **Comparable timings** need the target hardware (8xH100 SXM, 8 processes), no shim and the
  claimed configuration.
- **Comparable val_bpb** needs the target hardware, or the same number of training steps as
  the claimed run for every seed (a step-capped run computes the same thing on any hardware;
  a wallclock-capped one does fewer steps on slower hardware), and the claimed configuration:
  no ``--env`` override and no hyperparameter that differs from the claimed log's unasked.
- **Normalized times** divide raw seconds by the calibration's speed factor (how many times
  slower this machine ran the reference steps than 8xH100 SXM): an estimate, not a measurement.
"""

from __future__ import annotations

import statistics
from typing import Any

from .result import RerunResult

BPB_TOLERANCE = 0.001


def _seed_key(seed: Any) -> str:
    return str(seed)


def claimed_for(rerun: RerunResult, seed: Any) -> dict[str, Any]:
    return ((rerun.claims or {}).get("seeds") or {}).get(_seed_key(seed)) or {}


def claimed_values(rerun: RerunResult) -> list[float]:
    seeds = (rerun.claims or {}).get("seeds") or {}
    values = [c["val_bpb"] for c in seeds.values() if isinstance(c, dict) and c.get("val_bpb") is not None]
    if not values and (rerun.claims or {}).get("val_bpb") is not None:
        values = [rerun.claims["val_bpb"]]
    return values


def claimed_mean(rerun: RerunResult) -> float | None:
    claims = rerun.claims or {}
    if claims.get("val_bpb") is not None:
        return float(claims["val_bpb"])
    values = claimed_values(rerun)
    return statistics.fmean(values) if values else None


def claimed_band(rerun: RerunResult, tolerance: float = BPB_TOLERANCE) -> tuple[float, float] | None:
    values = claimed_values(rerun)
    if not values:
        return None
    return min(values) - tolerance, max(values) + tolerance


def completed_runs(rerun: RerunResult) -> list[dict[str, Any]]:
    return [r for r in rerun.runs or [] if r.get("val_bpb") is not None]


def speed_factor(rerun: RerunResult) -> float | None:
    calibration = rerun.calibration or {}
    factor = calibration.get("speed_factor")
    return float(factor) if factor else None


def comparability(rerun: RerunResult) -> dict[str, Any]:
    hardware = rerun.hardware or {}
    on_target = bool(hardware.get("matches_target"))
    shim = bool((rerun.shim or {}).get("flash_attn"))
    reasons = []
    if not on_target:
        reasons.append(f"ran on {hardware.get('description') or 'unknown hardware'}, not {hardware.get('target') or '8xH100 SXM'}")
    if shim:
        reasons.append("FlashAttention 3 replaced by the SDPA shim (--shim-flash-attn)")
    steps_known = []
    for run in completed_runs(rerun):
        claimed_steps = claimed_for(rerun, run.get("seed")).get("steps")
        if claimed_steps is not None and run.get("steps") is not None:
            steps_known.append(int(run["steps"]) == int(claimed_steps))
    steps_match = bool(steps_known) and all(steps_known)
    config = configuration(rerun)
    if config["unrequested"]:
        reasons.append(f"the rerun did not run the claimed configuration (seed{'s' if len(config['unrequested']) > 1 else ''} "
                       f"{', '.join(map(str, config['unrequested']))}: hyperparameters differ without being asked for)")
    if config["overridden"]:
        reasons.append(f"overridden on request: {', '.join(config['overridden'])}")
    claimed_config = not config["unrequested"] and not config["overridden"]
    return {
        "on_target_hardware": on_target,
        "shim": shim,
        "timings": on_target and not shim and claimed_config,
        "val_bpb": (on_target or steps_match) and claimed_config,
        "steps_match": steps_match if steps_known else None,
        "claimed_configuration": claimed_config,
        "reasons": reasons,
    }


def configuration(rerun: RerunResult) -> dict[str, Any]:
    """Whether the runs ran the claimed configuration: seeds whose printed hyperparameters differ
    from the claimed log's without being asked for, and the variables set on request (data
    locations aside: they move files, not the configuration)."""
    unrequested = [r.get("seed") for r in rerun.runs or []
                   if (r.get("config_diff") or {}).get("status") == "differs"]
    overrides = ((rerun.config or {}).get("overrides") or {})
    overridden = sorted(n for n, item in overrides.items()
                        if item.get("source") == "--env" and item.get("changes_claim", True))
    return {"unrequested": unrequested, "overridden": overridden}


def _max(values: list[float | int | None]) -> float | int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _normalized(value: float | None, factor: float | None) -> float | None:
    if value is None or not factor:
        return None
    return round(value / factor, 3)


def run_comparison(rerun: RerunResult, run: dict[str, Any], tolerance: float = BPB_TOLERANCE) -> dict[str, Any]:
    """Per-seed comparison: delta vs the same seed's claim, and whether it lies in the band."""
    claim = claimed_for(rerun, run.get("seed"))
    band = claimed_band(rerun, tolerance)
    value = run.get("val_bpb")
    claimed = claim.get("val_bpb")
    return {
        "seed": run.get("seed"),
        "claimed_val_bpb": claimed,
        "delta_val_bpb": round(value - claimed, 8) if value is not None and claimed is not None else None,
        "within_claimed_spread": (band[0] <= value <= band[1]) if value is not None and band else None,
        "claimed_steps": claim.get("steps"),
    }


def limit_checks(rerun: RerunResult, limits: dict[str, Any] | None) -> dict[str, Any]:
    """Each run's bytes and times against the track's limits, raw and (when calibrated) normalized."""
    limits = limits or {}
    cap = limits.get("artifact_bytes_max")
    train_max = limits.get("train_seconds_max")
    eval_max = limits.get("eval_seconds_max")
    slack = limits.get("train_step_tolerance_max_seconds") or 0.0
    factor = speed_factor(rerun)
    out = []
    for run in rerun.runs or []:
        loop = run.get("train_loop_seconds")
        external_eval = run.get("eval_seconds")
        entry = {
            "seed": run.get("seed"),
            "artifact_over": (run.get("artifact_bytes") is not None and cap is not None and run["artifact_bytes"] > cap),
            "reported_train_over": (train_max is not None and run.get("reported_train_seconds") is not None
                                    and run["reported_train_seconds"] > train_max + slack),
            "external_train_loop_over": (train_max is not None and loop is not None and loop > train_max + slack),
            "reported_eval_over": (eval_max is not None and run.get("reported_eval_seconds") is not None
                                   and run["reported_eval_seconds"] > eval_max),
            "external_eval_over": (eval_max is not None and external_eval is not None and external_eval > eval_max),
            "normalized_train_loop_seconds": _normalized(loop, factor),
            "normalized_eval_seconds": _normalized(external_eval, factor),
        }
        entry["normalized_train_loop_over"] = (train_max is not None and entry["normalized_train_loop_seconds"] is not None
                                               and entry["normalized_train_loop_seconds"] > train_max + slack)
        entry["normalized_eval_over"] = (eval_max is not None and entry["normalized_eval_seconds"] is not None
                                         and entry["normalized_eval_seconds"] > eval_max)
        out.append(entry)
    return {"artifact_bytes_max": cap, "train_seconds_max": train_max, "eval_seconds_max": eval_max,
            "train_slack_seconds": slack, "runs": out}


def summarize(rerun: RerunResult, limits: dict[str, Any] | None = None,
              tolerance: float = BPB_TOLERANCE) -> dict[str, Any]:
    """The numbers the review's Reproduction table shows (see the module docstring)."""
    runs = rerun.runs or []
    completed = completed_runs(rerun)
    band = claimed_band(rerun, tolerance)
    mean = statistics.fmean(r["val_bpb"] for r in completed) if completed else None
    c_mean = claimed_mean(rerun)
    values = claimed_values(rerun)
    factor = speed_factor(rerun)
    per_run = [run_comparison(rerun, r, tolerance) for r in runs]
    return {
        "seeds": len(runs),
        "completed": len(completed),
        "failed": sum(1 for r in runs if r.get("status") != "ok"),
        "val_bpb_mean": round(mean, 8) if mean is not None else None,
        "val_bpb_std": round(statistics.stdev(r["val_bpb"] for r in completed), 8) if len(completed) > 1 else None,
        "claimed_val_bpb_mean": c_mean,
        "claimed_val_bpb_min": min(values) if values else None,
        "claimed_val_bpb_max": max(values) if values else None,
        "claimed_val_bpb_std": round(statistics.stdev(values), 8) if len(values) > 1 else None,
        "tolerance": tolerance,
        "band": [round(band[0], 8), round(band[1], 8)] if band else None,
        "delta_val_bpb_mean": round(mean - c_mean, 8) if mean is not None and c_mean is not None else None,
        "within_claimed_spread": (band[0] <= mean <= band[1]) if mean is not None and band else None,
        "per_run": per_run,
        "artifact_bytes_max": _max([r.get("artifact_bytes") for r in runs]),
        "train_seconds_max": _max([r.get("train_seconds") for r in runs]),
        "train_loop_seconds_max": _max([r.get("train_loop_seconds") for r in runs]),
        "reported_train_seconds_max": _max([r.get("reported_train_seconds") for r in runs]),
        "eval_seconds_max": _max([r.get("eval_seconds") for r in runs]),
        "reported_eval_seconds_max": _max([r.get("reported_eval_seconds") for r in runs]),
        "peak_gpu_memory_mib_max": _max([r.get("peak_gpu_memory_mib") for r in runs]),
        "peak_rss_mib_max": _max([r.get("peak_rss_mib") for r in runs]),
        "speed_factor": factor,
        "normalized_train_loop_seconds_max": _normalized(_max([r.get("train_loop_seconds") for r in runs]), factor),
        "normalized_eval_seconds_max": _normalized(_max([r.get("eval_seconds") for r in runs]), factor),
        "comparable": comparability(rerun),
        "limits": limit_checks(rerun, limits),
    }

"""Synthetic reruns for the PG8xx rule examples and tests (nothing is launched).

``example_rerun()`` is a rerun of the bundled example record (seeds 42, 1337, 2025) that
reproduces it on 8xH100 SXM; keyword arguments change what the examples need to change.
The claims mirror the example record's submission.json.
"""

from __future__ import annotations

import copy
from typing import Any

from .compare import run_comparison, summarize
from .result import RerunResult

EXAMPLE_CLAIMS: dict[str, Any] = {
    "val_bpb": 1.17595658,
    "seeds": {
        "42": {"val_bpb": 1.17592428, "steps": 7454, "train_seconds": 592.048, "eval_seconds": 379.9,
               "artifact_bytes": 15752613},
        "1337": {"val_bpb": 1.17604757, "steps": 7441, "train_seconds": 592.007, "eval_seconds": 384.5,
                 "artifact_bytes": 15760598},
        "2025": {"val_bpb": 1.17589788, "steps": 7407, "train_seconds": 592.026, "eval_seconds": 382.7,
                 "artifact_bytes": 15746811},
    },
    "sources": ["submission.json"],
    "hardware": "8xH100 80GB SXM",
}

EXAMPLE_LIMITS = {"artifact_bytes_max": 16000000, "train_seconds_max": 600.0, "eval_seconds_max": 600.0,
                  "train_step_tolerance_max_seconds": 2.0}

CODE_BYTES = 8602

HARDWARE = {
    "8xH100": {"device": "cuda", "nproc": 8, "gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 8, "gpus_used": 8,
               "matches_target": True, "target": "8xH100 SXM", "description": "8x NVIDIA H100 80GB HBM3"},
    "1xH100": {"device": "cuda", "nproc": 1, "gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 1, "gpus_used": 1,
               "matches_target": False, "target": "8xH100 SXM", "description": "1x NVIDIA H100 80GB HBM3"},
    "8xH200": {"device": "cuda", "nproc": 8, "gpu_model": "NVIDIA H200", "gpu_count": 8, "gpus_used": 8,
               "matches_target": False, "target": "8xH100 SXM", "description": "8x NVIDIA H200"},
    "cpu": {"device": "cpu", "nproc": 2, "gpu_model": None, "gpu_count": 0, "gpus_used": 0, "matches_target": False,
            "target": "8xH100 SXM", "description": "CPU (example), 2 process(es)"},
}

GOOD_TAIL = ("step:7454/20000 val_loss:1.9855 val_bpb:1.1759 train_time:592048ms step_avg:79.43ms\n"
             "stopping_early: wallclock_cap train_time:592048ms step:7454/20000\n"
             "Total submission size int6+lzma: 15752613 bytes\n"
             "final_int6_ttt_exact val_loss:1.98549664 val_bpb:1.17592428")


def example_config_diff(*, requested: list[dict[str, Any]] | None = None, explained: list[dict[str, Any]] | None = None,
                        unrequested: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A seed's hyperparameter comparison with the claimed log (``runner.compare_configuration``)."""
    requested, explained, unrequested = requested or [], explained or [], unrequested or []
    return {"status": "differs" if unrequested else "same", "claimed_log": "train_seed42.log",
            "compared": 60, "same": 60 - len(requested) - len(explained) - len(unrequested),
            "requested": requested, "explained": explained, "unrequested": unrequested}


def example_run(seed: int, val_bpb: float | None, **overrides: Any) -> dict[str, Any]:
    """One seed's measurements; a reproduction of the claimed run unless overridden."""
    claim = EXAMPLE_CLAIMS["seeds"].get(str(seed), {})
    artifact_file = (claim.get("artifact_bytes") or 15750000) - CODE_BYTES
    run = {
        "seed": seed, "status": "ok", "problems": [], "exit_code": 0, "timed_out": False,
        "wall_seconds": 1071.4, "lines": 812, "startup_seconds": 41.2, "train_seconds": 634.0,
        "train_loop_seconds": 592.8, "train_end_source": "stop line", "reported_train_seconds": claim.get("train_seconds", 592.0),
        "artifact_seconds": 652.3, "final_metric_seconds": 1035.0, "eval_seconds": 382.7,
        "reported_eval_seconds": claim.get("eval_seconds", 380.0), "artifact_path": "final_model.int6.ptz",
        "artifact_file_bytes": artifact_file, "code_bytes": CODE_BYTES, "artifact_bytes": artifact_file + CODE_BYTES,
        "reported_artifact_bytes": claim.get("artifact_bytes"), "val_bpb": val_bpb, "val_loss": None,
        "headline_label": "final_int6_ttt_exact", "steps": claim.get("steps"), "peak_gpu_memory_mib": 61234,
        "network_attempts": [], "leftover_processes": 0, "processes_ended_on_timeout": 0,
        "log_path": f"/tmp/pgolf-rerun-example/seed{seed}/console.log", "log_tail": GOOD_TAIL,
        "compile_warmup_seconds": 28.4, "quantization_seconds": 18.3, "config_diff": example_config_diff(),
    }
    if val_bpb is None:
        run.update(status="no_metric", problems=["no_metric"])
    run.update(overrides)
    return run


def example_rerun(runs: list[dict[str, Any]] | None = None, *, hardware: str = "8xH100", shim: bool = False,
                  calibration: dict[str, Any] | None = None, infrastructure_error: str | None = None,
                  isolation: str = "network-namespace", config: dict[str, Any] | None = None) -> RerunResult:
    """A complete rerun (with its summary) of the bundled example record."""
    if runs is None:
        runs = [example_run(42, 1.1759301), example_run(1337, 1.1760390), example_run(2025, 1.1758851)]
    rerun = RerunResult(
        folder="example",
        command=f"torchrun --standalone --nproc_per_node={HARDWARE[hardware]['nproc']} train_gpt.py",
        nproc=HARDWARE[hardware]["nproc"],
        device=HARDWARE[hardware]["device"],
        seeds=[r["seed"] for r in runs],
        timeout_seconds=1800.0,
        out_dir="/tmp/pgolf-rerun-example",
        config=config or {},
        hardware=copy.deepcopy(HARDWARE[hardware]),
        isolation={"method": isolation, "description": isolation},
        shim={"flash_attn": shim, "returns": "out" if shim else None},
        calibration=calibration,
        claims=copy.deepcopy(EXAMPLE_CLAIMS),
        code={"counted_bytes": CODE_BYTES},
        limits=dict(EXAMPLE_LIMITS),
        runs=runs,
        infrastructure_error=infrastructure_error,
    )
    for run in runs:
        run.update({k: v for k, v in run_comparison(rerun, run).items() if k != "seed"})
    rerun.summary = summarize(rerun, EXAMPLE_LIMITS)
    return rerun


def example_calibration(factor: float) -> dict[str, Any]:
    return {"profile": "baseline-9x512", "steps": 20, "status": "ok", "ms_per_step": round(43.54 * factor, 2),
            "reference_ms_per_step": 43.54, "reference_hardware": "8xH100 80GB HBM3 (SXM)", "speed_factor": factor}

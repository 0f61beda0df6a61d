"""``--calibrate``: how fast is this machine compared with 8xH100 SXM?

The reference trainer (bundled into a ``train_gpt.py``, on the generated demo corpus, so no
download) runs a fixed number of timed steps of a fixed profile (``speed_reference``) through
the same harness, launcher and process count as the rerun itself. Its milliseconds per step
(the trainer's own ``step_avg``, cross-checked by the external timing of the training loop),
divided by the profile's recorded 8xH100 SXM number, is the speed factor: 8.0 means this
machine needs eight times as long per step. The review shows raw times, and raw times divided
by the factor as an estimate for the target hardware.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .harness import SeedSpec, run_seed
from .isolation import Isolation
from .speed_reference import CalibrationProfile, profile_for


def build_calibration_record(root: Path, profile: CalibrationProfile) -> tuple[Path, dict[str, str]]:
    """A record folder holding the bundled reference trainer, and the data-path environment."""
    from pgolf_audit.reference_impl.bundle import write_train_script  # the reference extra (numpy, sentencepiece): only a calibration run needs it
    from pgolf_audit.reference_impl.dataset import build_demo_dataset  # the reference extra, as above

    data = build_demo_dataset(root / "data", **profile.dataset)
    record = root / "record"
    write_train_script(record / "train_gpt.py")
    return record, {"DATA_PATH": str(data.dataset_path.resolve()), "TOKENIZER_PATH": str(data.tokenizer_path.resolve())}


def run_calibration(*, device: str, nproc: int, python: str, out_dir: Path, isolation: Isolation,
                    timeout_s: float = 900.0, steps: int | None = None, profile: CalibrationProfile | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    profile = profile or profile_for(device)
    steps = steps or profile.default_steps
    root = out_dir / "calibration"
    result: dict[str, Any] = {"profile": profile.name, "description": profile.description, "steps": steps,
                              "status": None, "ms_per_step": None, "external_ms_per_step": None,
                              "speed_factor": None}
    try:
        record, data_env = build_calibration_record(root, profile)
    except ImportError as exc:
        result.update(status="unavailable", note=f"the reference implementation needs {exc.name or exc}")
        return result
    env = profile.environment(steps) | data_env
    if device == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")
    spec = SeedSpec(folder=record, seed=profile.seed, nproc=nproc, device=device, out_dir=root / "run",
                    scratch_dir=root / "scratch", isolation=isolation, timeout_s=timeout_s, python=python,
                    env=env, progress=progress)
    run = run_seed(spec)
    result["log_path"] = run.get("log_path")
    result["status"] = run.get("status")
    result["exit_code"] = run.get("exit_code")
    result["wall_seconds"] = run.get("wall_seconds")
    if run.get("status") != "ok":
        result["log_tail"] = run.get("log_tail")
        return result
    ms = run.get("reported_step_avg_ms")
    result["ms_per_step"] = ms
    if run.get("train_loop_seconds") and run.get("steps"):
        result["external_ms_per_step"] = round(1000.0 * run["train_loop_seconds"] / run["steps"], 2)
    reference = profile.reference
    if reference is not None:
        result.update(reference_ms_per_step=reference.ms_per_step, reference_hardware=reference.hardware,
                      reference_source=reference.source, reference_caveat=reference.caveat)
        if ms:
            result["speed_factor"] = round(ms / reference.ms_per_step, 3)
    else:
        result["note"] = f"profile {profile.name} has no recorded 8xH100 time: speed measured, no factor"
    return result

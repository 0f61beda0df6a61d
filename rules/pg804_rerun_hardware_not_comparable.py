"""PG804 rerun-hardware-not-comparable."""

from __future__ import annotations

from pgolf_audit.model import Category, Severity
from pgolf_audit.rerun.compare import comparability
from pgolf_audit.rerun.examples import example_calibration, example_rerun, example_run
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class RerunHardwareNotComparable(Check):
    """The rerun's timings are not comparable with 8xH100 SXM (other hardware or the shim).

    What it checks:
        Whether the rerun ran on the target hardware (8 processes on 8 H100 SXM GPUs, read
        from `nvidia-smi`) and without the FlashAttention shim. If not, it says what the rerun
        ran on, the calibration's speed factor (or that none was measured) and whether the
        shim replaced FlashAttention 3, so the reader knows the time verdicts are provisional
        and which numbers are still checkable.

    Why it breaks the rules:
        R-HW-8xH100-SXM: the 600 s limits are defined on 8xH100 SXM; a rerun elsewhere can
        check bytes and (for step-capped runs) scores, but its times are only estimates.

    Example:
        A rerun with `--nproc 1` on one H100, or any rerun with `--shim-flash-attn`.

    Legal alternative:
        Rerun on 8xH100 SXM with FlashAttention 3 installed for a timing verdict.

    Known limitations:
        The SXM form factor is inferred from the GPU name (`H100 80GB HBM3`); the speed factor
        comes from the reference trainer, not from the submission.
    """

    CODE = "PG804"
    NAME = "rerun-hardware-not-comparable"
    CATEGORY = Category.RERUN
    SEVERITY = Severity.INFO
    REFERENCES = ("R-HW-8xH100-SXM",)

    VALID = [
        FolderCase("8xH100 SXM without the shim", options={"rerun_result": example_rerun()}),
        FolderCase("no rerun requested"),
    ]
    INVALID = [
        FolderCase("one H100, calibrated", options={"rerun_result": example_rerun(
            [example_run(42, 1.2912, steps=980)], hardware="1xH100", calibration=example_calibration(8.1))},
            message_contains=("1x NVIDIA H100 80GB HBM3", "speed factor 8.1", "provisional")),
        FolderCase("8xH100 with the flash-attention shim", options={"rerun_result": example_rerun(shim=True)},
                   message_contains=("shim", "val_bpb and bytes remain checkable")),
        FolderCase("CPU without calibration", options={"rerun_result": example_rerun(
            [example_run(42, 1.2912, steps=980)], hardware="cpu")},
            message_contains=("no calibration",)),
    ]

    def run(self, ctx):
        rerun = ctx.rerun
        if rerun is None:
            raise SkipCheck("rerun not requested")
        comparable = comparability(rerun)
        if comparable["timings"]:
            return
        calibration = rerun.calibration or {}
        factor = calibration.get("speed_factor")
        if factor:
            calibrated = (f"speed factor {factor:g} from --calibrate ({calibration.get('ms_per_step')} ms/step here vs "
                          f"{calibration.get('reference_ms_per_step')} ms/step on {calibration.get('reference_hardware')}); "
                          "normalized times = raw / factor")
        elif calibration:
            calibrated = f"calibration gave no speed factor ({calibration.get('note') or calibration.get('status')})"
        else:
            calibrated = "no calibration (--calibrate)"
        checkable = ("val_bpb and bytes remain checkable" if comparable["val_bpb"]
                     else "bytes remain checkable; val_bpb is provisional unless the runs did the claimed number of steps")
        hardware = rerun.hardware or {}
        yield self.finding(
            f"timings are provisional: {'; '.join(comparable['reasons'])}; {calibrated}; {checkable}",
            values={"hardware": hardware.get("description"), "gpu_model": hardware.get("gpu_model"),
                    "gpu_count": hardware.get("gpu_count"), "nproc": rerun.nproc,
                    "speed_factor": factor, "shim": comparable["shim"], "out_dir": rerun.out_dir})

"""PG803 rerun-over-limits."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bytes, fmt_s
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rerun.compare import comparability, limit_checks, speed_factor
from pgolf_audit.rerun.examples import example_calibration, example_rerun, example_run
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class RerunOverLimits(Check):
    """The rerun measured an artifact over 16,000,000 bytes or train/eval time over 600 s.

    What it checks:
        For each rerun seed, measured from outside the script: the artifact file's size on
        disk plus the counted code bytes (the static audit's rule: train_gpt.py and every local
        file it imports, executes or builds) against `artifact_bytes_max`, on any hardware
        (error). Times against `train_seconds_max` / `eval_seconds_max` of the track, on
        8xH100 SXM without the shim: the run's own reported training or eval time over the
        limit is an error; the externally timed training loop (first training line to the stop
        line or the artifact) or eval (artifact to the final metric line) over the limit is a
        warning, since that window also holds work the rules leave untimed (periodic
        validation, decompression, compile warm-up). On other hardware or with the shim the
        times are provisional: with `--calibrate` the normalized times (raw / speed factor)
        are compared (warning); without it an over-limit raw time is only noted (info).

    Why it breaks the rules:
        R-ART-CAP-DECIMAL (16,000,000 bytes, code plus compressed model, every seed),
        R-TIME-TRAIN-600 and R-TIME-EVAL-600 (600 s each on 8xH100 SXM).

    Example:
        The artifact file is 15,993,000 bytes and train_gpt.py 21,000 bytes: 16,014,000 in
        total, although the log printed `Total submission size: 15,994,000 bytes` (it counted
        a compressed copy of the code).

    Legal alternative:
        Keep the artifact plus all counted code at or under 16,000,000 bytes and both phases
        under 600 s, measured on 8xH100 SXM.

    Known limitations:
        Files the script writes outside its folder are not seen. External times include the
        harness's own line reading (milliseconds); the normalized times assume the calibration
        profile scales like the submission, which is an estimate.
    """

    CODE = "PG803"
    NAME = "rerun-over-limits"
    CATEGORY = Category.RERUN
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-ART-CAP-DECIMAL", "R-TIME-TRAIN-600", "R-TIME-EVAL-600")

    VALID = [
        FolderCase("within every limit on 8xH100", options={"rerun_result": example_rerun()}),
        FolderCase("slow on one H100 but within limits after calibration", options={"rerun_result": example_rerun(
            [example_run(42, 1.2912, steps=980, eval_seconds=3050.0, reported_eval_seconds=3040.0)],
            hardware="1xH100", calibration=example_calibration(8.1))}),
        FolderCase("no rerun requested"),
    ]
    INVALID = [
        FolderCase("artifact on disk plus code over the cap", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, artifact_file_bytes=15_993_000, code_bytes=21_000, artifact_bytes=16_014_000)])},
            severity=Severity.ERROR, message_contains=("16,014,000", "16,000,000")),
        FolderCase("script reports 640 s of training on 8xH100", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, reported_train_seconds=640.2, train_loop_seconds=641.0)])},
            severity=Severity.ERROR, message_contains=("640.200 s",)),
        FolderCase("external training loop over 600 s while the script says 592 s", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, train_loop_seconds=655.0)])},
            severity=Severity.WARNING, message_contains=("655.000 s", "592.048 s")),
        FolderCase("eval over 600 s on 8xH100", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, eval_seconds=688.4, reported_eval_seconds=688.0)])},
            severity=Severity.ERROR, message_contains=("688.000 s",)),
        FolderCase("eval too slow even after normalization", options={"rerun_result": example_rerun([
            example_run(42, 1.2912, steps=980, eval_seconds=6100.0, reported_eval_seconds=6090.0)],
            hardware="1xH100", calibration=example_calibration(8.1))},
            severity=Severity.WARNING, message_contains=("provisional", "753.086 s")),
        FolderCase("over the limit on one H100 without calibration: noted", options={"rerun_result": example_rerun([
            example_run(42, 1.2912, steps=980, eval_seconds=3050.0, reported_eval_seconds=3040.0)], hardware="1xH100")},
            severity=Severity.INFO, message_contains=("--calibrate",)),
    ]

    def run(self, ctx):
        rerun = ctx.rerun
        if rerun is None:
            raise SkipCheck("rerun not requested")
        runs = rerun.runs or []
        if not runs:
            raise SkipCheck("the rerun ran no seed")
        limits = ctx.limits
        checks = limit_checks(rerun, {"artifact_bytes_max": limits.artifact_bytes_max,
                                      "train_seconds_max": limits.train_seconds_max,
                                      "eval_seconds_max": limits.eval_seconds_max,
                                      "train_step_tolerance_max_seconds": limits.train_step_tolerance_max_seconds})
        comparable = comparability(rerun)
        factor = speed_factor(rerun)
        why = "; ".join(comparable["reasons"])
        for run, over in zip(runs, checks["runs"]):
            seed = run.get("seed")
            # The script produced the artifact and spent the time; the rerun's log is evidence.
            where = Location(ctx.entry_script or "train_gpt.py")
            if over["artifact_over"]:
                logged = run.get("reported_artifact_bytes")
                yield self.finding(
                    f"seed {seed}: artifact {fmt_bytes(run.get('artifact_file_bytes'))} bytes on disk "
                    f"({run.get('artifact_path')}) + {fmt_bytes(run.get('code_bytes'))} counted code bytes = "
                    f"{fmt_bytes(run['artifact_bytes'])} bytes, over the {fmt_bytes(limits.artifact_bytes_max)}-byte cap"
                    + (f" (the run's log printed {fmt_bytes(logged)})" if logged is not None else ""),
                    location=where, values={"seed": seed, "measured": run["artifact_bytes"],
                                            "limit": limits.artifact_bytes_max, "logged": logged,
                                            "log_path": run.get("log_path")})
            yield from self._times(run, over, checks, comparable, factor, why, where)

    def _times(self, run, over, checks, comparable, factor, why, where):
        seed = run.get("seed")
        train_max, eval_max = checks["train_seconds_max"], checks["eval_seconds_max"]
        reported_train, loop = run.get("reported_train_seconds"), run.get("train_loop_seconds")
        reported_eval, external_eval = run.get("reported_eval_seconds"), run.get("eval_seconds")
        values = {"seed": seed, "reported_train_seconds": reported_train, "train_loop_seconds": loop,
                  "reported_eval_seconds": reported_eval, "eval_seconds": external_eval, "speed_factor": factor,
                  "log_path": run.get("log_path")}
        if comparable["timings"]:
            if over["reported_train_over"]:
                yield self.finding(f"seed {seed}: the rerun's own log reports {fmt_s(reported_train)} of training, over "
                                   f"the {train_max:g} s limit", location=where, values=values)
            elif over["external_train_loop_over"]:
                yield self.finding(
                    f"seed {seed}: the training loop took {fmt_s(loop)} measured from outside (first training line to the "
                    f"end of training) while the script reports {fmt_s(reported_train)}: over the {train_max:g} s limit; "
                    f"check for training work outside the script's timer", location=where, values=values,
                    severity=Severity.WARNING)
            if over["reported_eval_over"]:
                yield self.finding(f"seed {seed}: the rerun's own log reports {fmt_s(reported_eval)} of evaluation, over "
                                   f"the {eval_max:g} s limit", location=where, values=values)
            elif over["external_eval_over"]:
                yield self.finding(
                    f"seed {seed}: evaluation took {fmt_s(external_eval)} measured from outside (artifact written to the "
                    f"final metric line), over the {eval_max:g} s limit, while the script reports {fmt_s(reported_eval)}",
                    location=where, values=values, severity=Severity.WARNING)
            return
        if factor:
            for label, value, normalized, limit, is_over in (
                    ("training loop", loop, over["normalized_train_loop_seconds"], train_max, over["normalized_train_loop_over"]),
                    ("evaluation", external_eval, over["normalized_eval_seconds"], eval_max, over["normalized_eval_over"])):
                if is_over:
                    yield self.finding(
                        f"seed {seed}: {label} took {fmt_s(value)} here, {fmt_s(normalized)} normalized to 8xH100 SXM "
                        f"(speed factor {factor:g}), over the {limit:g} s limit; provisional: {why}",
                        location=where, values=values, severity=Severity.WARNING)
            return
        for label, value, limit in (("training loop", loop, train_max), ("evaluation", external_eval, eval_max)):
            if value is not None and limit is not None and value > limit:
                yield self.finding(
                    f"seed {seed}: {label} took {fmt_s(value)} here, over {limit:g} s, but the times are not comparable "
                    f"({why}) and not normalized: rerun with --calibrate for an estimate", location=where, values=values,
                    severity=Severity.INFO)

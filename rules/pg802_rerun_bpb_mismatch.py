"""PG802 rerun-bpb-mismatch."""

from __future__ import annotations

from pgolf_audit.model import Category, Confidence, Location, Severity
from pgolf_audit.rerun.compare import BPB_TOLERANCE, claimed_band, comparability, completed_runs, summarize
from pgolf_audit.rerun.examples import example_calibration, example_rerun, example_run
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


def _f(x: float | None, digits: int = 5) -> str:
    return "unknown" if x is None else f"{x:.{digits}f}"


class RerunBpbMismatch(Check):
    """The reproduced val_bpb falls outside the claimed seeds' spread.

    What it checks:
        The mean val_bpb of the rerun's seeds (each from the rerun's own final metric line,
        chosen by the audit's headline rule) against the claimed seeds' values: it must lie
        within [lowest claim, highest claim] widened by 0.001 bpb on each side. Seeds outside
        that band while the mean is inside are reported as warnings. On hardware other than
        8xH100 SXM the comparison is provisional (warning), unless every seed ran the claimed
        number of steps: a wallclock-capped script does fewer steps on slower hardware.

    Why it breaks the rules:
        R-FMT-LOG-INTEGRITY: the logs must come from the submitted code and configuration;
        maintainers reproduce records and reject those that do not reproduce (#1868 compliance
        rerun, #2124).

    Example:
        Claimed 1.0810, 1.0815, 1.0812; three reruns of the same script give a mean of 1.0890.

    Legal alternative:
        Submit the script and configuration that produced the logs, with every environment
        variable the run needs stated in the README.

    Known limitations:
        Same-seed reruns on GPUs are not bit-identical; the 0.001 tolerance absorbs that and
        4-decimal rounding, so smaller discrepancies go unreported. A run with a different
        configuration (missing `--env`) is reported as a mismatch too: check the command line.
    """

    CODE = "PG802"
    NAME = "rerun-bpb-mismatch"
    CATEGORY = Category.RERUN
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.MEDIUM
    REFERENCES = ("R-FMT-LOG-INTEGRITY",)

    VALID = [
        FolderCase("reproduced within the spread", options={"rerun_result": example_rerun()}),
        FolderCase("one seed rerun, inside the band", options={"rerun_result": example_rerun([example_run(42, 1.1764)])}),
        FolderCase("no rerun requested"),
    ]
    INVALID = [
        FolderCase("reproduced mean much worse", options={"rerun_result": example_rerun([
            example_run(42, 1.1839), example_run(1337, 1.1851), example_run(2025, 1.1842)])},
            severity=Severity.ERROR, message_contains=("outside", "1.17590")),
        FolderCase("worse on one H100 after fewer steps: provisional", options={"rerun_result": example_rerun([
            example_run(42, 1.2912, steps=980)], hardware="1xH100", calibration=example_calibration(8.1))},
            severity=Severity.WARNING, message_contains=("provisional",)),
        FolderCase("one seed off while the mean is inside", options={"rerun_result": example_rerun([
            example_run(42, 1.1790), example_run(1337, 1.1752), example_run(2025, 1.1755)])},
            severity=Severity.WARNING, message_contains=("seed 42",)),
    ]

    def run(self, ctx):
        rerun = ctx.rerun
        if rerun is None:
            raise SkipCheck("rerun not requested")
        completed = completed_runs(rerun)
        if not completed:
            raise SkipCheck("no rerun seed reached a final val_bpb line (see PG801)")
        band = claimed_band(rerun)
        if band is None:
            raise SkipCheck("the folder claims no val_bpb to compare with")
        summary = summarize(rerun, rerun.limits)
        comparable = comparability(rerun)
        provisional = not comparable["val_bpb"]
        note = (f"; provisional: {'; '.join(comparable['reasons'])}, and the runs did not all do the claimed "
                f"number of steps" if provisional else "")
        lo, hi = band
        claimed_lo, claimed_hi = lo + BPB_TOLERANCE, hi - BPB_TOLERANCE
        spread = (f"{_f(claimed_lo)}" if claimed_lo == claimed_hi else f"{_f(claimed_lo)}-{_f(claimed_hi)}")
        mean = summary["val_bpb_mean"]
        # The claim is what disagrees; the rerun's logs (outside the folder) are evidence.
        where = Location(ctx.submission_file) if ctx.submission_file else None
        values = {"reproduced_mean": mean, "claimed_mean": summary["claimed_val_bpb_mean"], "band": summary["band"],
                  "seeds": [r.get("seed") for r in completed], "comparable": not provisional,
                  "logs": [r.get("log_path") for r in completed]}
        if not summary["within_claimed_spread"]:
            yield self.finding(
                f"reproduced mean val_bpb {_f(mean)} over {len(completed)} seed{'s' if len(completed) != 1 else ''} is "
                f"outside the claimed seeds' spread {spread} +- {BPB_TOLERANCE} (delta {summary['delta_val_bpb_mean']:+.5f} "
                f"vs the claimed mean {_f(summary['claimed_val_bpb_mean'])}){note}",
                location=where, values=values, severity=Severity.WARNING if provisional else Severity.ERROR)
            return
        for run in completed:
            if not (lo <= run["val_bpb"] <= hi):
                yield self.finding(
                    f"seed {run.get('seed')}: reproduced val_bpb {_f(run['val_bpb'])} is outside the claimed spread "
                    f"{spread} +- {BPB_TOLERANCE} (the mean {_f(mean)} is inside){note}",
                    location=where,
                    values={"seed": run.get("seed"), "val_bpb": run["val_bpb"], "band": summary["band"],
                            "log_path": run.get("log_path")},
                    severity=Severity.INFO if provisional else Severity.WARNING)

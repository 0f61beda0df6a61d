"""PG303 eval-over-wallclock."""

from __future__ import annotations

from pgolf_audit.checkutil import run_name
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, SkipCheck


class EvalOverWallclock(Check):
    """The scored evaluation takes more than 600 seconds.

    What it checks:
        The eval time of each run's headline metric (its `eval_time:Nms`, or the script's
        `total_eval_time:Xs` when printed) against `eval_seconds_max`: over is an error. When
        the headline fits but all distinct eval passes of the run together (roundtrip + sliding
        + TTT; a pass printed twice counts once) exceed the limit, both numbers are reported as a warning, since what counts inside the
        eval budget is only partly settled. A headline without any eval time is a warning: the
        limit could not be checked from the log.

    Why it breaks the rules:
        R-TIME-EVAL-600: evaluation takes at most 600 s on 8xH100 in addition to training.
        cocohearts on #1972 (about 688 s, invalid); #1319 (825 s SLOT); #1557 (617 s).

    Example:
        `final_sliding val_loss:… val_bpb:… eval_time:768812ms`.

    Legal alternative:
        Cheaper eval (larger stride, fewer TTT epochs), precomputation inside the timer.

    Known limitations:
        Compile warmups before the eval timer are excluded by the scripts themselves, as in
        practice (#1855); the rerun harness measures eval from outside.
    """

    CODE = "PG303"
    NAME = "eval-over-wallclock"
    CATEGORY = Category.TIME
    SEVERITY = Severity.ERROR
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-TIME-EVAL-600",)

    VALID = [FolderCase("sliding 68 s + TTT 311 s")]
    INVALID = [
        FolderCase("TTT headline takes 620 s", edits={"train_seed1337.log": [
            (r"(legal_ttt val_loss:\S+ val_bpb:\S+) eval_time:\d+ms", r"\1 eval_time:620400ms")]},
            message_contains=("620.4 s",)),
        FolderCase("passes add up past 600 s", severity=Severity.WARNING, edits={"train_seed42.log": [
            (r"(final_int6_sliding_window val_loss:\S+ val_bpb:\S+) eval_time:\d+ms", r"\1 eval_time:290000ms")]},
            message_contains=("all eval passes",)),
        FolderCase("headline without eval time", severity=Severity.WARNING, edits={n: [
            (r"(legal_ttt val_loss:\S+ val_bpb:\S+) eval_time:\d+ms", r"\1")] for n in
            ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")}, message_contains=("no eval time",)),
    ]

    def run(self, ctx):
        cap = ctx.limits.eval_seconds_max
        runs = [r for r in ctx.scored_runs]
        if not runs:
            raise SkipCheck("no scored run (reported by PG901/PG601)")
        for run in runs:
            rec, head = run.record, run.headline
            if rec.total_eval_time_s is not None:
                seconds, line, source = rec.total_eval_time_s, rec.total_eval_time_line, "total_eval_time"
            elif head.eval_time_ms is not None:
                seconds = head.eval_time_ms / 1000.0
                line = head.eval_time_borrowed_from or head.line
                source = f"{head.label} eval_time"
            else:
                yield self.finding(f"{run_name(run)}: the headline {head.label} has no eval time; the {cap:g} s eval limit "
                                   f"is unchecked for this run", location=run.at(head.line), severity=Severity.WARNING)
                continue
            # a pass printed twice (ttt_sliding:done and the legal_ttt line after it) counts once
            passes = rec.eval_time_distinct_ms / 1000.0 if rec.eval_passes_ms else None
            values = {"limit": cap, "headline_eval_seconds": round(seconds, 3),
                      "all_passes_seconds": round(passes, 3) if passes is not None else None}
            if seconds > cap:
                yield self.finding(f"{run_name(run)}: scored eval ({source}) took {seconds:,.1f} s, over the {cap:g} s limit",
                                   location=run.at(line), excerpt=ctx.line_text(run.path, line), values=values)
            elif passes is not None and passes > cap and rec.total_eval_time_s is None:
                repeated = {m.line for m in rec.metrics if m.same_pass_as is not None}
                names = ", ".join(f"{label} {ms / 1000:,.1f} s" for label, ms, line in rec.eval_passes_ms if line not in repeated)
                yield self.finding(
                    f"{run_name(run)}: the headline eval took {seconds:,.1f} s, but all eval passes together take "
                    f"{passes:,.1f} s ({names}); whether the unscored passes count is not settled",
                    location=run.at(line), severity=Severity.WARNING, values=values,
                )

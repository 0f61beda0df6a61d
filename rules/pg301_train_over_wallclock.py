"""PG301 train-over-wallclock."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_s, required_runs, run_name, step_seconds
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, IncompleteCheck


class TrainOverWallclock(Check):
    """A record run trained for more than 600 seconds (beyond one step of tolerance).

    What it checks:
        Each run's training time from `stopping_early: wallclock_cap train_time:Nms` (else the
        last progress line) against the track's `train_seconds_max`. The stop check runs after
        a step finishes, so an overshoot within one step (the ruleset's
        `train_step_tolerance_steps` logged average steps, at most
        `train_step_tolerance_max_seconds`) is reported as info with the number; more is an error. A run whose training time cannot
        be read makes the audit INCOMPLETE.

    Why it breaks the rules:
        R-TIME-TRAIN-600: training is at most 600 s on 8xH100. #1956: a forced stop step ran
        601.153 s; #1945: only the strictly-under-600 commit counted.

    Example:
        `stopping_early: wallclock_cap train_time:2400107ms` (a 40-minute run in a record folder).

    Legal alternative:
        Keep `MAX_WALLCLOCK_SECONDS=600` (or less, reserving time for calibration).

    Known limitations:
        The logged time is the script's own timer; `pgolf-audit rerun` measures it from outside.
    """

    CODE = "PG301"
    NAME = "train-over-wallclock"
    CATEGORY = Category.TIME
    SEVERITY = Severity.ERROR
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-TIME-TRAIN-600",)

    VALID = [
        FolderCase("stops at 592 s"),
        FolderCase("non-record track trains for an hour", options={"track": "track_non_record_16mb"},
                   edits={"train_seed42.log": [(r"train_time:592\d+ms step:", "train_time:3600000ms step:")]}),
    ]
    INVALID = [
        FolderCase("40 minutes of training", edits={"train_seed42.log": [
            (r"stopping_early: wallclock_cap train_time:\d+ms", "stopping_early: wallclock_cap train_time:2400107ms")]},
            message_contains=("2,400.107 s",)),
        FolderCase("just past the cap, within one step", severity=Severity.INFO, edits={"train_seed42.log": [
            (r"stopping_early: wallclock_cap train_time:\d+ms", "stopping_early: wallclock_cap train_time:600061ms")]},
            message_contains=("within one step",)),
        FolderCase("last step slower than the average, still within one step", severity=Severity.INFO,
                   edits={"train_seed42.log": [(r"stopping_early: wallclock_cap train_time:\d+ms",
                                                "stopping_early: wallclock_cap train_time:600128ms")]},
                   message_contains=("600.128 s", "within one step")),
        FolderCase("two seconds past the cap", edits={"train_seed2025.log": [
            (r"stopping_early: wallclock_cap train_time:\d+ms", "stopping_early: wallclock_cap train_time:602048ms")]},
            message_contains=("602.048 s",)),
    ]

    def run(self, ctx):
        cap = ctx.limits.train_seconds_max
        runs = required_runs(ctx, scored=False)
        timed = [r for r in runs if r.record.train_time_ms is not None]
        if not timed:
            raise IncompleteCheck("no log reports a training time: the 600 s training limit cannot be checked")
        for run in timed:
            seconds = run.record.train_time_ms / 1000.0
            if seconds <= cap:
                continue
            step_s = step_seconds(run)
            tolerance = ctx.limits.train_tolerance(step_s)
            over = seconds - cap
            line = run.record.train_time_line
            common = dict(location=run.at(line), excerpt=ctx.line_text(run.path, line),
                          values={"limit": cap, "measured": round(seconds, 3), "tolerance": round(tolerance, 3)})
            if over <= tolerance:
                yield self.finding(f"{run_name(run)} trained {fmt_s(seconds)}, {over:.3f} s past {cap:g} s but within one step "
                                   f"({step_s * 1000:.1f} ms logged average, {over / step_s if step_s else 0:.2f} steps): the stop check "
                                   f"runs after the step", severity=Severity.INFO, **common)
            else:
                yield self.finding(f"{run_name(run)} trained {fmt_s(seconds)}, {over:.3f} s over the {cap:g} s limit", **common)
        for run in runs:
            if run.record.train_time_ms is None and not run.record.eval_only:
                yield self.finding(f"{run_name(run)} reports no training time", location=run.at(None), severity=Severity.WARNING)

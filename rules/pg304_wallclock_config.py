"""PG304 wallclock-config."""

from __future__ import annotations

from pgolf_audit.checkutil import run_name
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, SkipCheck

WALLCLOCK_KEYS = ("max_wallclock_seconds", "MAX_WALLCLOCK_SECONDS")
FORCE_STOP_KEYS = ("force_stop_step", "FORCE_STOP_STEP")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WallclockConfig(Check):
    """A record run was configured with a wallclock cap other than 600 s or a forced stop step.

    What it checks:
        The hyperparameters each log prints: `max_wallclock_seconds` must be 600 (0 or 900
        means a non-record run; a smaller value is fine) and a non-zero `force_stop_step`
        means training stopped by step count rather than by the clock.

    Why it breaks the rules:
        R-TIME-TRAIN-600: `MAX_WALLCLOCK_SECONDS` must be 600 for records; #1956: the record
        `FORCE_STOP_STEP=4945` ignored the wallclock (601.153 s).

    Example:
        `  max_wallclock_seconds: 900.0` in a record-track log.

    Legal alternative:
        `MAX_WALLCLOCK_SECONDS=600` (or a reserve below it) and no forced stop step.

    Known limitations:
        Only logs that print their configuration can be checked.
    """

    CODE = "PG304"
    NAME = "wallclock-config"
    CATEGORY = Category.TIME
    SEVERITY = Severity.ERROR
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-TIME-TRAIN-600",)

    VALID = [FolderCase("600 s cap")]
    INVALID = [
        FolderCase("900 s cap", edits={"train_seed42.log": [(r"max_wallclock_seconds: 600\.0", "max_wallclock_seconds: 900.0")]},
                   message_contains=("900",)),
        FolderCase("no cap at all", edits={"train_seed42.log": [(r"max_wallclock_seconds: 600\.0", "max_wallclock_seconds: 0")]},
                   message_contains=("0",)),
        FolderCase("forced stop step", severity=Severity.WARNING,
                   edits={"train_seed42.log": [(r"  logit_softcap: 30\.0", "  force_stop_step: 4945\n  logit_softcap: 30.0")]},
                   message_contains=("4945",)),
    ]

    def run(self, ctx):
        cap = ctx.limits.train_seconds_max
        runs = ctx.scored_runs
        if not runs:
            raise SkipCheck("no scored run")
        for run in runs:
            params = run.record.hyperparameters
            lines = run.record.hyperparameter_lines
            key = next((k for k in WALLCLOCK_KEYS if k in params), None)
            value = _number(params.get(key)) if key else None
            if key and value is not None and (value <= 0 or value > cap):
                yield self.finding(f"{run_name(run)} ran with {key}={params[key]} (record runs must stop at {cap:g} s)",
                                   location=run.at(lines.get(key)), excerpt=ctx.line_text(run.path, lines.get(key)),
                                   values={"configured": value, "limit": cap})
            key = next((k for k in FORCE_STOP_KEYS if k in params), None)
            value = _number(params.get(key)) if key else None
            if key and value:
                yield self.finding(f"{run_name(run)} ran with {key}={params[key]}: training stopped by step count, "
                                   f"not by the clock", location=run.at(lines.get(key)), severity=Severity.WARNING,
                                   excerpt=ctx.line_text(run.path, lines.get(key)))

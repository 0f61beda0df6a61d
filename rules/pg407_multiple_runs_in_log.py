"""PG407 multiple-runs-in-log."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, CopyOf, FolderCase


class MultipleRunsInLog(Check):
    """A log holds several runs, or two log files are byte-identical copies.

    What it checks:
        Logs holding more than one run (several code dumps, stop lines or step-0 lines): only
        the last run counts as evidence and the earlier ones are named with their results.
        Byte-identical copies (`train.log` = `train_seed1337.log`) count once.

    Why it breaks the rules:
        R-FMT-LOG-INTEGRITY: each seed's evidence is one run. `2026-03-19_MixedQuant…/train.log`
        holds 3 runs (1.19764, 1.20840, 1.16301); only the last matches the submission.

    Example:
        A log appended to across three runs.

    Legal alternative:
        One log file per run and seed.

    Known limitations:
        A copy that differs by one byte is treated as a separate run.
    """

    CODE = "PG407"
    NAME = "multiple-runs-in-log"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-LOG-INTEGRITY",)

    VALID = [FolderCase("one run per log")]
    INVALID = [
        FolderCase("a copy of one seed's log", edits={"train.log": CopyOf("train_seed1337.log")}, severity=Severity.INFO,
                   message_contains=("train.log",)),
        FolderCase("two runs appended in one log",
                   edits={"train_seed42.log": lambda text: text + text},
                   message_contains=("2 runs",)),
    ]

    def run(self, ctx):
        for log in ctx.training_logs:
            if len(log.runs) > 1:
                earlier = "; ".join(
                    f"run {r.index + 1} (lines {r.first_line}-{r.last_line}): "
                    + (f"{r.headline.label} {r.headline.val_bpb}" if r.headline else "no final metric")
                    for r in log.runs[:-1]
                )
                yield self.finding(f"{log.path} holds {len(log.runs)} runs; only the last counts ({earlier})",
                                   location=Location(log.path, log.runs[-1].first_line))
        for run in ctx.runs:
            if run.duplicate_of and run.record.index == 0:
                yield self.finding(f"{run.path} is a byte-identical copy of {run.duplicate_of}; counted once",
                                   location=Location(run.path), severity=Severity.INFO)

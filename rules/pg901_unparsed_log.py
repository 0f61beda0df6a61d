"""PG901 unparsed-log."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.parsers.logs import looks_like_training_log
from pgolf_audit.rulebase import Check, FolderCase


class UnparsedLog(Check):
    """A log-like file yields no run: no recognised metric, size or stop line.

    What it checks:
        Every `*.log` / `*.txt` file (except requirements.txt and the like) is parsed with all
        known log dialects. A file that reads as no training run is reported by name with what
        the parser saw. When no log of the folder can be read as a run at all, the audit cannot
        check any claim: the verdict is INCOMPLETE.

    Why it breaks the rules:
        Logs are the evidence for every claim (R-FMT-LOG-INTEGRITY). An unreadable log is
        either not a log or a dialect the auditor does not know; both need a human.

    Example:
        `results.tsv`-style notes saved as `notes.txt`; a log truncated to its code dump.

    Legal alternative:
        Logs as written by the submitted script.

    Known limitations:
        Driver logs and per-seed result files (`summary.log`) are listed as non-run files
        (info), not errors.
    """

    CODE = "PG901"
    NAME = "unparsed-log"
    CATEGORY = Category.META
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-LOG-INTEGRITY",)

    VALID = [FolderCase("three readable seed logs")]
    INVALID = [
        FolderCase("a notes file next to the logs", edits={"notes.txt": "tried lr 0.03, worse\n"},
                   severity=Severity.INFO, message_contains=("notes.txt",)),
        FolderCase("every log is just the code dump",
                   edits={n: "import torch\nprint('hello')\n" for n in ("train_seed42.log", "train_seed1337.log",
                                                                          "train_seed2025.log")},
                   severity=Severity.ERROR, message_contains=("no log",)),
    ]

    def run(self, ctx):
        logs = ctx.logs
        unread = [log for log in logs if not looks_like_training_log(log)]
        for log in unread:
            why = "; ".join(log.problems) if log.problems else "no run-like line"
            yield self.finding(f"{log.path} reads as no training run ({why})", location=Location(log.path),
                               severity=Severity.INFO if ctx.training_logs else Severity.WARNING)
        unreadable = [p for p in ctx.log_candidates if p not in {log.path for log in logs}]
        for rel in unreadable:
            yield self.finding(f"{rel} could not be read: {'; '.join(ctx.problems_for(rel)) or 'unknown error'}",
                               location=Location(rel))
        if ctx.log_candidates and not ctx.training_logs:
            yield self.finding(
                f"no log of the {len(ctx.log_candidates)} log-like file(s) reads as a training run: no claim can be checked",
                severity=Severity.ERROR,
            )

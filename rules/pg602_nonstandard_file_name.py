"""PG602 nonstandard-file-name."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, Move


class NonstandardFileName(Check):
    """Required files exist under names other than the ones the submission process expects.

    What it checks:
        The claims file is named `submission.json` (not `submission_ternary.json`), there is
        only one claims file, and at least one train log sits at the folder root rather than
        only in subfolders.

    Why it breaks the rules:
        R-FMT-REQUIRED-FILES names the files; tools and reviewers look for them by name. The
        real variants were merged, so this is a warning (several claims files: which one counts
        is ambiguous) or a note.

    Example:
        `submission_binary.json` instead of `submission.json`; logs only under `logs/`.

    Legal alternative:
        Rename the claims file to `submission.json`; keep one log per seed at the folder root.

    Known limitations:
        Names of logs are not enforced (`train_seed42.log`, `seed_42.log` and `train.log` all
        occur in merged records).
    """

    CODE = "PG602"
    NAME = "nonstandard-file-name"
    CATEGORY = Category.PACKAGING
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-REQUIRED-FILES",)

    VALID = [FolderCase("standard names")]
    INVALID = [
        FolderCase("claims in submission_ternary.json", edits={"submission.json": Move("submission_ternary.json")},
                   message_contains=("submission_ternary.json",)),
        FolderCase("two claims files", edits={"submission_old.json": "{}"}, message_contains=("2 claims files",)),
        FolderCase("logs only in a subfolder",
                   edits={n: Move(f"logs/{n}") for n in ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")},
                   severity=Severity.INFO, message_contains=("logs/",)),
    ]

    def run(self, ctx):
        files = ctx.submission_files
        if files and "submission.json" not in files:
            yield self.finding(f"claims are in {files[0]}, not submission.json", location=Location(files[0]))
        if len(files) > 1:
            yield self.finding(f"{len(files)} claims files ({', '.join(files)}); audited {ctx.submission_file}",
                               location=Location(ctx.submission_file or files[0]))
        logs = [log.path for log in ctx.training_logs]
        if logs and all("/" in p for p in logs):
            yield self.finding(f"train logs are only in subfolders ({', '.join(logs)})", severity=Severity.INFO,
                               location=Location(logs[0]))

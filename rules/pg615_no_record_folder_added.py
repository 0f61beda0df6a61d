"""PG615 no-record-folder-added."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, OLD


class NoRecordFolderAdded(PrRule):
    """The pull request adds no new record folder, so there is no submission to audit.

    What it checks:
        Whether the PR adds at least one new folder under `records/`. A PR that only edits
        existing files, only deletes, or changes nothing is reported, and the review says
        what it does change.

    Why it breaks the rules:
        A submission is the addition of one new record folder (R-FMT-SINGLE-FOLDER); without
        one there are no claims, logs or code to check, and the audit cannot pass.

    Example:
        A PR that only updates an earlier record's logs, or only edits the root README.

    Legal alternative:
        Add `records/<track>/YYYY-MM-DD_Name/` with the required files; infrastructure
        changes go in PRs that are not run through the submission audit.

    Known limitations:
        Maintainers' own housekeeping PRs trip this rule; run the audit only on PRs that
        touch `records/` (the example workflow filters on that path).
    """

    CODE = "PG615"
    NAME = "no-record-folder-added"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER",)

    VALID = [PrCase("adds one record folder", changes=CLEAN, existing=EXISTING)]
    INVALID = [
        PrCase("only edits an existing record", changes=(("M", f"{OLD}/README.md"),), existing=EXISTING,
               message_contains=("no new record folder", "1 existing record folder")),
        PrCase("an empty diff", changes=(), message_contains=("changes no file",)),
    ]

    def check_pr(self, pr):
        if pr.new_folders:
            return
        first = pr.changes[0].path if pr.changes else None
        yield self.finding(
            f"no new record folder under records/, so there is no submission to audit. {pr.shape_sentence()}",
            location=Location(first) if first else None, values={"changed_paths": len(pr.changes)},
        )

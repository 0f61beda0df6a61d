"""PG613 modifies-existing-record."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, NEW, OLD


class ModifiesExistingRecord(PrRule):
    """The pull request edits, deletes, renames or adds files in a record folder that already exists.

    What it checks:
        Every path inside a record folder present at the merge base that the PR touches: a
        modified README or log, a deleted file, a file moved out of it or a new file added to
        it. One finding per existing folder, listing what happens to its files.

    Why it breaks the rules:
        A submission only adds its own new folder (R-FMT-SINGLE-FOLDER). Merged records are
        the evidence behind the leaderboard; editing or deleting them in a submission PR
        rewrites somebody's result. Corrections to a merged record go through their own PR,
        reviewed as such (the retraction in #1127 kept the old numbers visible).

    Example:
        A PR that adds its record and "fixes" the README of the record it builds on, or
        deletes the earlier record it supersedes.

    Legal alternative:
        Leave existing folders untouched; cite the earlier record in your README.

    Known limitations:
        An author amending their own merged record in a dedicated PR is reported too; the
        reviewer judges whether that PR is a correction.
    """

    CODE = "PG613"
    NAME = "modifies-existing-record"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER",)

    VALID = [PrCase("adds a new folder next to existing ones", changes=CLEAN, existing=EXISTING)]
    INVALID = [
        PrCase("edits an existing record's README", changes=CLEAN + (("M", f"{OLD}/README.md"),), existing=EXISTING,
               message_contains=("2026-03-19_EarlierRecord", "modified")),
        PrCase("deletes an existing record", changes=(("D", f"{OLD}/README.md"), ("D", f"{OLD}/submission.json"),
                                                      ("D", f"{OLD}/train_gpt.py")),
               existing=EXISTING, message_contains=("3 deleted",)),
        PrCase("renames an existing record folder", changes=(("R", f"{OLD}/README.md", f"{NEW}/README.md"),),
               existing=EXISTING, message_contains=("moved to",)),
    ]

    def check_pr(self, pr):
        for folder, touched in pr.existing_folder_changes.items():
            kinds: dict[str, int] = {}
            for _, verb in touched:
                key = verb.split()[0]
                kinds[key] = kinds.get(key, 0) + 1
            summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            first_path, first_verb = touched[0]
            yield self.finding(
                f"existing record folder {folder} is changed ({summary}; e.g. {first_path} {first_verb}): "
                "a submission PR leaves merged records untouched",
                location=Location(first_path),
                values={"folder": folder, "changes": kinds, "paths": [p for p, _ in touched[:50]]},
            )

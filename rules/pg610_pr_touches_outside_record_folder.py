"""PG610 pr-touches-outside-record-folder."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, NEW

MAX_LISTED = 100  # one finding per path up to this many, then one finding for the rest


class PrTouchesOutsideRecordFolder(PrRule):
    """The pull request changes files outside the records tree (README, root scripts, other trees).

    What it checks:
        Every path the PR adds, modifies, deletes or renames (from the merge base to the head)
        that is not under `records/`: the root README.md, the root train_gpt.py, `.gitignore`,
        `data/`, new top-level folders. One finding per path (the first 100, then one for the
        rest); a rename out of or into the records tree counts for the path outside it.

    Why it breaks the rules:
        A submission PR "only adds one new folder" under `records/<track>/`; it does not edit
        the root train_gpt.py, the README or other folders (R-FMT-SINGLE-FOLDER). Root edits
        in record PRs (`.gitignore`, planning notes, leaderboard rows) are asked to be
        reverted, because the maintainers update the leaderboard themselves.

    Example:
        A record PR that also adds its row to the README leaderboard table, or commits
        `PRD_notes.md` at the repository root.

    Legal alternative:
        Put everything the submission needs inside its record folder; propose changes to the
        shared files in a separate, non-record PR.

    Known limitations:
        Judges paths only; a change the maintainers asked for (a fix to a shared script in a
        combined PR) is still reported and needs a reviewer's judgement.
    """

    CODE = "PG610"
    NAME = "pr-touches-outside-record-folder"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER",)

    VALID = [
        PrCase("a clean submission: one new record folder", changes=CLEAN, existing=EXISTING),
        PrCase("a file moved inside the new folder", changes=CLEAN + (("R", f"{NEW}/a.log", f"{NEW}/logs/a.log"),)),
    ]
    INVALID = [
        PrCase("edits the root README", changes=CLEAN + (("M", "README.md"),), existing=EXISTING,
               message_contains=("README.md", "modified")),
        PrCase("deletes the root train_gpt.py", changes=CLEAN + (("D", "train_gpt.py"),), existing=EXISTING,
               message_contains=("train_gpt.py", "deleted")),
        PrCase("adds a top-level tree", changes=CLEAN + (("A", "experiments/run1/notes.md"),),
               message_contains=("experiments/run1/notes.md",)),
        PrCase("moves a root file into the record folder", changes=CLEAN + (("R", "notes.md", f"{NEW}/notes.md"),),
               message_contains=("notes.md", "moved to")),
    ]

    def check_pr(self, pr):
        outside = pr.outside_changes
        for path, verb in outside[:MAX_LISTED]:
            yield self.finding(
                f"{path} is {verb}: a submission PR changes nothing outside its record folder",
                location=Location(path), values={"path": path, "change": verb},
            )
        rest = outside[MAX_LISTED:]
        if rest:
            yield self.finding(
                f"{len(rest)} more paths outside the record folder are changed (first: {rest[0][0]})",
                location=Location(rest[0][0]), values={"count": len(rest)},
            )

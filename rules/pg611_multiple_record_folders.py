"""PG611 multiple-record-folders."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, NEW, OTHER_NEW


class MultipleRecordFolders(PrRule):
    """The pull request adds more than one record folder.

    What it checks:
        The number of new record folders the PR adds (folders under `records/` that do not
        exist at the merge base and receive files at the head), whatever directory they sit
        in. More than one is reported once, naming every folder; each folder is still audited.

    Why it breaks the rules:
        One PR adds one record folder (R-FMT-SINGLE-FOLDER). Maintainers split PRs that bundle
        an unrelated second folder (#1143 re-filed as #1796; #150 and #296), because each
        record is reviewed, timed against the leaderboard and merged on its own.

    Example:
        A PR adding `records/track_10min_16mb/2026-04-20_MyRecord/` and
        `records/track_10min_16mb/2026-04-21_OtherIdea/`.

    Legal alternative:
        One PR per record folder; an ablation belongs in the record's own folder (a
        subfolder) or in a non-record PR.

    Known limitations:
        A record and its support folder (`submission_type: "record_support"`) submitted
        together are reported too; a reviewer decides.
    """

    CODE = "PG611"
    NAME = "multiple-record-folders"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER",)

    VALID = [
        PrCase("one new folder with a logs/ subfolder", changes=CLEAN + (("A", f"{NEW}/logs/train_seed1.log"),),
               existing=EXISTING),
    ]
    INVALID = [
        PrCase("two new record folders", changes=CLEAN + (("A", f"{OTHER_NEW}/README.md"),), existing=EXISTING,
               message_contains=("2 record folders", "2026-04-21_OtherIdea")),
        PrCase("a second folder in the other track",
               changes=CLEAN + (("A", "records/track_non_record_16mb/2026-04-20_Ablation/README.md"),),
               message_contains=("track_non_record_16mb/2026-04-20_Ablation",)),
    ]

    def check_pr(self, pr):
        folders = list(pr.new_folders)
        if len(folders) < 2:
            return
        second = pr.new_folders[folders[1]][0]
        yield self.finding(
            f"the pull request adds {len(folders)} record folders ({', '.join(folders)}); "
            "a submission PR adds exactly one: split the others into their own PRs",
            location=Location(second), values={"folders": folders},
        )

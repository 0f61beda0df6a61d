"""PG614 misplaced-record-files."""

from __future__ import annotations

from pathlib import PurePosixPath

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, RECORD


class MisplacedRecordFiles(PrRule):
    """Files sit directly in `records/` or a track directory, or the record sits a level too deep.

    What it checks:
        Paths the PR touches that are files directly in `records/` or directly in a track
        directory (outside any record folder), and new record folders that hold no file of
        their own, only subfolders (`records/track_10min_16mb/alice/2026-04-20_X/README.md`:
        the record is nested one level too deep). The nested folder is still found and
        audited.

    Why it breaks the rules:
        A submission is one folder `records/<track>/YYYY-MM-DD_Name/` with README.md,
        submission.json, the script and the logs at its top (R-FMT-SINGLE-FOLDER,
        R-FMT-REQUIRED-FILES). Loose files in the track directory belong to no record, and a
        record hidden one level down is missed by the tooling that reads the track folders.

    Example:
        `records/track_10min_16mb/train_seed42.log`; `records/notes.md`;
        `records/track_10min_16mb/my-runs/2026-04-20_MyRecord/README.md`.

    Legal alternative:
        `records/track_10min_16mb/2026-04-20_MyRecord/{README.md,submission.json,train_gpt.py,*.log}`.

    Known limitations:
        A folder of record folders under a track (a grouping by author) is reported once for
        the grouping folder, not for each record inside it.
    """

    CODE = "PG614"
    NAME = "misplaced-record-files"
    SEVERITY = Severity.ERROR
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SINGLE-FOLDER", "R-FMT-REQUIRED-FILES")

    VALID = [
        PrCase("files at the top of the record folder, logs in a subfolder",
               changes=CLEAN + (("A", f"{RECORD}/2026-04-20_MyRecord/logs/seed1.log"),), existing=EXISTING),
    ]
    INVALID = [
        PrCase("a log directly in the track directory", changes=CLEAN + (("A", f"{RECORD}/train_seed42.log"),),
               message_contains=("directly in", "track_10min_16mb/train_seed42.log")),
        PrCase("a file directly in records/", changes=CLEAN + (("A", "records/notes.md"),),
               message_contains=("records/notes.md",)),
        PrCase("the record nested one level too deep",
               changes=(("A", f"{RECORD}/my-runs/2026-04-20_MyRecord/README.md"),
                        ("A", f"{RECORD}/my-runs/2026-04-20_MyRecord/submission.json")),
               message_contains=("too deep", "my-runs")),
    ]

    def check_pr(self, pr):
        for path, verb, area in pr.loose_record_files:
            where = "records/" if area == "records-root" else "a track directory"
            yield self.finding(f"{path} is {verb} directly in {where}, outside any record folder",
                               location=Location(path), values={"path": path, "change": verb})
        for folder, files in pr.new_folders.items():
            if any(PurePosixPath(f).parent.as_posix() == folder for f in files):
                continue
            inner = sorted({PurePosixPath(f).relative_to(folder).parts[0] for f in files})
            yield self.finding(
                f"new folder {folder} holds no file of its own, only {', '.join(inner)}/: the record is nested "
                "one level too deep (README.md and submission.json belong at the top of the record folder)",
                location=Location(files[0]), values={"folder": folder, "subfolders": inner},
            )

"""PG616 unexportable-record-entry."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import PrCase, PrRule

from ._pr_examples import CLEAN, EXISTING, NEW

REASONS = {
    "symlink": "a symbolic link (its target is not part of the folder and is never followed)",
    "submodule": "a git submodule (its code lives in another repository)",
    "oversized": "a file over the 32 MiB bound of the export (no record file is near that size)",
}


class UnexportableRecordEntry(PrRule):
    """The new record folder holds a symlink, a submodule or an oversized file at the head commit.

    What it checks:
        The tree of each new record folder at the PR's head: entries that are not regular
        files (symbolic links, submodules) and files larger than the export bound (32 MiB).
        These are not exported for the audit, so the folder is audited without them.

    Why it breaks the rules:
        A record must be self-contained and runnable from its folder (R-FMT-SELF-CONTAINED):
        a symlink or submodule pulls code from outside it, which the artifact's code bytes
        do not count (R-ART-CODE-BYTES). A file of tens of megabytes in a 16 MB challenge is
        usually a committed checkpoint or dataset shard.

    Example:
        `train_gpt.py -> ../../../train_gpt.py` (a symlink), a `modded-nanogpt` submodule,
        a 300 MB `final_model.pt`.

    Legal alternative:
        Copy the code into the folder (it then counts toward the artifact); keep checkpoints
        and data out of the repository.

    Known limitations:
        The bound is on single files; many medium files are exported up to 256 MiB in all.
    """

    CODE = "PG616"
    NAME = "unexportable-record-entry"
    SEVERITY = Severity.WARNING
    CATEGORY = Category.PACKAGING
    REFERENCES = ("R-FMT-SELF-CONTAINED", "R-ART-CODE-BYTES")

    VALID = [PrCase("regular files only", changes=CLEAN, existing=EXISTING)]
    INVALID = [
        PrCase("a symlinked script", changes=CLEAN, special={f"{NEW}/train_gpt.py": "symlink"},
               message_contains=("symbolic link", "train_gpt.py")),
        PrCase("a committed checkpoint", changes=CLEAN + (("A", f"{NEW}/final_model.pt"),),
               special={f"{NEW}/final_model.pt": "oversized"}, message_contains=("32 MiB",)),
    ]

    def check_pr(self, pr):
        new = pr.new_folders
        for path, kind in sorted(pr.special.items()):
            if not any(path.startswith(folder + "/") for folder in new):
                continue
            yield self.finding(f"{path} is {REASONS.get(kind, kind)}; it was not exported for the audit",
                               location=Location(path), values={"path": path, "kind": kind})

"""PG604 unreadable-file."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, IncompleteCheck

TEXT_SUFFIXES = (".md", ".json", ".log", ".txt", ".py")


class UnreadableFile(Check):
    """A file of the folder could not be read safely or is not valid UTF-8 text.

    What it checks:
        Every entry of the folder: symlinks pointing outside the folder (never followed),
        special files, files over the reading limit, and text files (README, JSON, logs, code)
        that are binary or not valid UTF-8 (read with replacement characters).

    Why it breaks the rules:
        A submission must be self-contained and reviewable (R-FMT-SELF-CONTAINED). Content
        that is outside the folder or unreadable cannot be part of the evidence.

    Example:
        `train_seed42.log -> /home/me/logs/run.txt`; a README saved as UTF-16.

    Legal alternative:
        Regular files inside the record folder, saved as UTF-8.

    Known limitations:
        Decoding problems in a log are reported, and the log is still parsed with the
        undecodable bytes replaced.
    """

    CODE = "PG604"
    NAME = "unreadable-file"
    CATEGORY = Category.PACKAGING
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-SELF-CONTAINED",)

    VALID = [FolderCase("plain UTF-8 files")]
    INVALID = [
        FolderCase("README in Latin-1", edits={"README.md": "# R\u00e9sultats\n".encode("latin-1")},
                   message_contains=("README.md", "UTF-8")),
        FolderCase("binary junk named like a log", edits={"notes.txt": bytes(range(256)) * 4},
                   message_contains=("notes.txt",)),
    ]

    def run(self, ctx):
        findings = [self.finding(f"{rel}: {problem}", location=Location(rel)) for rel, problem in ctx.folder.problems]
        not_read: list[str] = []
        for rel in sorted(ctx.folder.files):
            if not rel.lower().endswith(TEXT_SUFFIXES):
                continue
            try:
                _, problems = ctx.folder.read_text(rel)
            except Exception as exc:  # FolderError: size limit, OS error
                not_read.append(str(exc))
                continue
            findings.extend(self.finding(problem, location=Location(rel)) for problem in problems)
        if not_read:
            # a log, README, JSON or script that could not be read at all is evidence nobody
            # checked: the audit is incomplete, never a pass or a mere warning
            raise IncompleteCheck("not read, so not checked: " + "; ".join(not_read[:5])
                                  + "".join(f"; {f.message}" for f in findings[:5]))
        yield from findings

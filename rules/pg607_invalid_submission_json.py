"""PG607 invalid-submission-json."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


# Who and what: a submission without these cannot be attributed or listed.
IDENTITY_FIELDS = ("author", "github_id", "name", "date")


class InvalidSubmissionJson(Check):
    """submission.json is not a readable JSON object, or lacks the fields a record states.

    What it checks:
        The claims file parses as a UTF-8 JSON object (error otherwise, with the parser's
        position). Then the expected concepts: a missing val_bpb is an error (the claim is the
        point of the file), missing author, github_id, name or date are warnings, other
        expected fields (track, seeds, val_loss, ...) are info. Keys outside the known
        vocabulary are listed as info, never failed (39 real key sets exist).

    Why it breaks the rules:
        The claims must be machine-checkable against the logs (R-FMT-SUBMISSION-JSON).

    Example:
        A trailing comma; `val_bpb` stored under `val_loss` (`2026-03-20_10L_Int5MLP`).

    Legal alternative:
        `{"author": …, "github_id": …, "name": …, "date": "YYYY-MM-DD", "val_bpb": 1.0810,
        "seeds": [...], "seed_results": {...}, "bytes_total": …}`.

    Known limitations:
        Aliases are normalised (mean_val_bpb, bytes_total/artifact_bytes, …); a value under an
        unusual key is only found when the parser knows the alias.
    """

    CODE = "PG607"
    NAME = "invalid-submission-json"
    CATEGORY = Category.PACKAGING
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-FMT-SUBMISSION-JSON",)

    VALID = [FolderCase("the example's claims")]
    INVALID = [
        FolderCase("trailing comma", edits={"submission.json": '{"author": "a", "val_bpb": 1.1,}\n'},
                   message_contains=("submission.json",)),
        FolderCase("empty file", edits={"submission.json": ""}, message_contains=("submission.json",)),
        FolderCase("a JSON list", edits={"submission.json": "[1, 2]\n"}, message_contains=("object",)),
        FolderCase("no val_bpb", json={"val_bpb": None}, message_contains=("val_bpb",)),
        FolderCase("no author", json={"author": None}, severity=Severity.WARNING, message_contains=("author",)),
    ]

    def run(self, ctx):
        rel = ctx.submission_file
        if rel is None:
            raise SkipCheck("no submission file (reported by PG601)")
        claims = ctx.submission
        if claims is None:
            yield self.finding(f"{rel} cannot be used: {ctx.submission_error}", location=Location(rel))
            return
        optional = []
        for concept in claims.missing:
            if concept == "val_bpb" or concept in IDENTITY_FIELDS:
                severity = Severity.ERROR if concept == "val_bpb" else Severity.WARNING
                yield self.finding(f"{rel} has no {concept}", location=Location(rel, json_path=concept), severity=severity)
            else:
                optional.append(concept)
        if optional:
            yield self.finding(f"{rel} lacks fields records usually state: {', '.join(optional)}",
                               location=Location(rel), severity=Severity.INFO)
        for problem in claims.problems:
            yield self.finding(f"{rel}: {problem}", location=Location(rel), severity=Severity.WARNING)
        if claims.unknown_keys:
            yield self.finding(f"{rel} has keys outside the known vocabulary: {', '.join(claims.unknown_keys)}",
                               location=Location(rel), severity=Severity.INFO)

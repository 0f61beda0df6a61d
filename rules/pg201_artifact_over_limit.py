"""PG201 artifact-over-limit."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bytes, required_runs, run_name
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, IncompleteCheck


class ArtifactOverLimit(Check):
    """A run's logged artifact (code + compressed model) is over 16,000,000 bytes.

    What it checks:
        For every run, the last `Total submission size …: N bytes` line (or the ternary
        `budget:N/16000000` line) against the track's `artifact_bytes_max` (decimal bytes).
        Every seed must fit: the maximum over seeds counts. The submission.json total is
        checked too. Runs whose log prints no total are listed; when no log prints one, the cap
        cannot be verified and the audit is INCOMPLETE.

    Why it breaks the rules:
        R-ART-CAP-DECIMAL: the artifact is code bytes plus compressed model bytes, at most
        16,000,000 bytes (not 16 MiB). Over-cap PRs were rejected (#1809: 16,024,793 B; #1835;
        #1040 believed the limit was in MiB).

    Example:
        `Total submission size quantized+brotli: 16058494 bytes` (2026-04-06 HessianSDClip).

    Legal alternative:
        Prune or quantize further until every seed's total is <= 16,000,000 bytes.

    Known limitations:
        Logs that print only megabytes (JSON `15.75/16.00MB`) are compared at that precision.
        Code that the logged total leaves out is PG202's concern.
    """

    CODE = "PG201"
    NAME = "artifact-over-limit"
    CATEGORY = Category.ARTIFACT
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-ART-CAP-DECIMAL",)

    VALID = [
        FolderCase("every seed under the cap"),
        FolderCase("exactly at the cap", edits={"train_seed42.log": [(r"Total submission size int6\+lzma: \d+",
                                                                      "Total submission size int6+lzma: 16000000")]}),
    ]
    INVALID = [
        FolderCase("one seed 8 bytes over", edits={"train_seed1337.log": [
            (r"Total submission size int6\+lzma: \d+", "Total submission size int6+lzma: 16000008")]},
            message_contains=("16,000,008", "16,000,000")),
        FolderCase("claim over the cap", json={"bytes_total": 16024793}, message_contains=("16,024,793",)),
        FolderCase("no log prints a total", edits={n: [(r"Total submission size[^\n]*\n", "")] for n in
                                                   ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")},
                   message_contains=("no total",), severity=Severity.WARNING),
    ]

    def run(self, ctx):
        cap = ctx.limits.artifact_bytes_max
        runs = required_runs(ctx, scored=False)
        measured = [r for r in runs if r.record.total_bytes is not None]
        for run in measured:
            total = run.record.total_bytes
            if total > cap:
                yield self.finding(
                    f"{run_name(run)} logs a total of {fmt_bytes(total)} bytes, {fmt_bytes(total - cap)} over the "
                    f"{fmt_bytes(cap)}-byte cap",
                    location=run.at(run.record.total_bytes_line),
                    excerpt=ctx.line_text(run.path, run.record.total_bytes_line),
                    values={"limit": cap, "measured": total, "seed": run.seed},
                )
        claims = ctx.submission
        if claims and claims.artifact_bytes is not None and claims.artifact_bytes > cap:
            key = claims.key_used.get("artifact_bytes", "bytes_total")
            yield self.finding(
                f"submission.json {key} claims {fmt_bytes(claims.artifact_bytes)} bytes, over the {fmt_bytes(cap)}-byte cap",
                location=Location(claims.path, json_path=key), values={"limit": cap, "claimed": claims.artifact_bytes},
            )
        missing = [r for r in runs if r.record.total_bytes is None and not r.record.eval_only]
        if not measured:
            if claims and claims.artifact_bytes is not None:
                yield self.finding(
                    f"no total-size line in any log; only the claimed {fmt_bytes(claims.artifact_bytes)} bytes "
                    f"(unverified) can be compared with the cap", severity=Severity.WARNING,
                )
                return
            raise IncompleteCheck("no log prints a total submission size and no size is claimed: the 16,000,000-byte cap cannot be checked")
        for run in missing:
            yield self.finding(f"{run_name(run)} prints no total submission size; that seed's size is unverified",
                               location=Location(run.path), severity=Severity.WARNING)

"""PG203 size-claim-mismatch."""

from __future__ import annotations

import statistics

from pgolf_audit.checkutil import fmt_bytes, run_name
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck
from pgolf_audit.summary import seed_claim_for


class SizeClaimMismatch(Check):
    """The artifact size claimed in submission.json is not what the logs report.

    What it checks:
        The top-level claimed total (`bytes_total`, `artifact_bytes`, `artifact_bytes_max`…)
        against the logs' totals: it should equal the maximum over seeds. A value equal to the
        mean, to the model-only bytes (code left out), or rounded is named as such. Each
        per-seed `artifact_bytes` is compared with that seed's log.

    Why it breaks the rules:
        R-ART-CAP-DECIMAL: the cap applies to every seed, so the claim that matters is the
        maximum of code + model bytes. R-FMT-SUBMISSION-JSON: the numbers must match the logs.
        In 2026-04-06 HessianSDClip the claimed 15,978,121 is the mean of model-only bytes
        while every log's total is over 16,000,000.

    Example:
        `bytes_total` 15,916,170 = mean of the seeds (max 15,927,782); `artifact_bytes`
        15,991,486 copied to all three seeds.

    Legal alternative:
        Claim the maximum total over seeds, copied from the logs' `Total submission size`.

    Known limitations:
        A claim that differs from the logs by a few bytes is reported; the tool does not know
        whether the log or the claim is stale.
    """

    CODE = "PG203"
    NAME = "size-claim-mismatch"
    CATEGORY = Category.ARTIFACT
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-ART-CAP-DECIMAL", "R-FMT-SUBMISSION-JSON")

    VALID = [FolderCase("claim equals the largest seed total")]
    INVALID = [
        FolderCase("claim is the mean", json={"bytes_total": 15753341}, message_contains=("mean",)),
        FolderCase("claim leaves the code out", json={"bytes_total": 15751996}, message_contains=("model-only",)),
        FolderCase("per-seed bytes copied from another seed",
                   json={"seed_results": {"2025": {"artifact_bytes": 15760598}}}, message_contains=("seed 2025",)),
        FolderCase("rounded claim", json={"bytes_total": 15800000}, message_contains=("rounded",)),
    ]

    def run(self, ctx):
        claims = ctx.submission
        if claims is None:
            raise SkipCheck("no readable submission.json")
        runs = [r for r in ctx.evidence_runs if r.record.total_bytes is not None]
        if not runs:
            raise SkipCheck("no log prints a total size (PG201 reports it)")
        totals = [r.record.total_bytes for r in runs]
        models = [r.record.model_bytes for r in runs if r.record.model_bytes is not None]
        claimed = claims.artifact_bytes
        key = claims.key_used.get("artifact_bytes", "bytes_total")
        where = Location(claims.path, json_path=key)
        if claimed is not None and claimed != max(totals):
            values = {"claimed": claimed, "max_logged": max(totals), "mean_logged": round(statistics.fmean(totals))}
            if len(totals) > 1 and abs(claimed - statistics.fmean(totals)) <= 1:
                why = f"is the mean of the {len(totals)} logged totals; the cap applies to each seed, max {fmt_bytes(max(totals))}"
            elif models and (claimed in models or abs(claimed - statistics.fmean(models)) <= 1):
                why = (f"equals model-only bytes (code left out); the logged totals with code reach "
                       f"{fmt_bytes(max(totals))}")
            elif claimed % 1000 == 0 and abs(claimed - max(totals)) < 0.01 * max(totals):
                why = f"looks rounded; the largest logged total is {fmt_bytes(max(totals))}"
            elif claimed in totals:
                why = f"is one seed's total, not the largest ({fmt_bytes(max(totals))})"
            else:
                why = f"matches no logged total (max {fmt_bytes(max(totals))}, min {fmt_bytes(min(totals))})"
            yield self.finding(f"claimed {key} {fmt_bytes(claimed)} {why}", location=where, values=values)
        for run in runs:
            claim = seed_claim_for(ctx, run.seed)
            if claim is None or claim.artifact_bytes is None or claim.artifact_bytes == run.record.total_bytes:
                continue
            yield self.finding(
                f"seed {run.seed} claims artifact {fmt_bytes(claim.artifact_bytes)} bytes but {run_name(run)} logs "
                f"{fmt_bytes(run.record.total_bytes)}",
                location=Location(claims.path, json_path=claim.json_path),
                related=[run.at(run.record.total_bytes_line)],
                values={"claimed": claim.artifact_bytes, "logged": run.record.total_bytes, "seed": run.seed},
            )

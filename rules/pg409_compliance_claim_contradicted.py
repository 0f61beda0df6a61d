"""PG409 compliance-claim-contradicted."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bytes, step_seconds
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

FLAG_KIND = {
    "artifact_under_16mb": "artifact", "artifact_under_16_mb": "artifact",
    "train_under_600s": "train", "training_under_600s": "train",
    "eval_under_600s": "eval",
    "three_seeds": "seeds",
}


class ComplianceClaimContradicted(Check):
    """A self-declared `compliance` flag in submission.json is contradicted by the logs.

    What it checks:
        Each boolean of the `compliance` block that the logs can test: artifact under 16 MB
        (max logged total), training under 600 s (max logged train time plus one step), eval
        under 600 s (max headline eval time), three seeds (distinct seeds among the runs).
        A `true` flag that the measurement contradicts is reported naming both.

    Why it breaks the rules:
        The flags are self-declared (R-FMT-SUBMISSION-JSON); several real ones conflict with
        the logs (e.g. `train_under_600s: true` next to 603 s of train + GPTQ).

    Example:
        `"artifact_under_16mb": true` with a logged total of 16,058,494 bytes.

    Legal alternative:
        Set the flags from the measured values, or drop the block.

    Known limitations:
        Flags about legality (`no_slot`, `score_first_ttt`) are checked by the code rules, not
        here.
    """

    CODE = "PG409"
    NAME = "compliance-claim-contradicted"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-SUBMISSION-JSON",)

    VALID = [FolderCase("flags agree with the logs")]
    INVALID = [
        FolderCase("artifact flag true, artifact over", edits={"train_seed42.log": [
            (r"Total submission size int6\+lzma: \d+", "Total submission size int6+lzma: 16058494")]},
            message_contains=("artifact_under_16mb", "16,058,494")),
        FolderCase("three_seeds with two logs", edits={"train_seed2025.log": None}, message_contains=("three_seeds",)),
    ]

    def run(self, ctx):
        claims = ctx.submission
        if claims is None or not claims.compliance:
            raise SkipCheck("no compliance block")
        runs = ctx.scored_runs
        if not runs:
            raise SkipCheck("no scored run")
        limits = ctx.limits
        for flag, value in claims.compliance.items():
            kind = FLAG_KIND.get(flag)
            if value is not True or kind is None:
                continue
            where = Location(claims.path, json_path=f"compliance.{flag}")
            if kind == "artifact":
                sizes = [r.record.total_bytes for r in runs if r.record.total_bytes is not None]
                if sizes and max(sizes) > limits.artifact_bytes_max:
                    yield self.finding(f"compliance.{flag} is true but a log reports {fmt_bytes(max(sizes))} bytes",
                                       location=where)
            elif kind == "train" and limits.train_seconds_max:
                for r in runs:
                    t = r.record.train_time_ms
                    if t is None:
                        continue
                    tol = limits.train_tolerance(step_seconds(r))
                    if t / 1000 > limits.train_seconds_max + tol:
                        yield self.finding(f"compliance.{flag} is true but {r.label} trained {t / 1000:,.3f} s",
                                           location=where)
                        break
            elif kind == "eval" and limits.eval_seconds_max:
                for r in runs:
                    h = r.headline
                    e = r.record.total_eval_time_s or (h.eval_time_ms / 1000 if h.eval_time_ms else None)
                    if e and e > limits.eval_seconds_max:
                        yield self.finding(f"compliance.{flag} is true but {r.label}'s scored eval took {e:,.1f} s",
                                           location=where)
                        break
            elif kind == "seeds":
                seeds = {r.seed for r in runs if r.seed is not None}
                if len(seeds) < 3:
                    yield self.finding(f"compliance.{flag} is true but the logs hold {len(seeds)} distinct seed(s)",
                                       location=where)

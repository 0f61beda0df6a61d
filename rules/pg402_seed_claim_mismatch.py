"""PG402 seed-claim-mismatch."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bpb, run_name, same_at_precision, seeds_text
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class SeedClaimMismatch(Check):
    """Per-seed claims in submission.json disagree with the seed logs, or lack a log.

    What it checks:
        Every seed submission.json declares (`seeds`, `seed_results`) has a run in the logs,
        every run's seed is declared, and each seed's claimed val_bpb equals that seed's
        headline at the printed precision (a value found only on another line of the log is a
        warning; found nowhere, an error). Claimed steps are compared too (info).

    Why it breaks the rules:
        R-FMT-SUBMISSION-JSON: per-seed numbers must match the logs; claims without logs are
        not evidence (MLP3x_QAT claims seeds 42 and 123 with one log; GDN's seed 1341 claim is
        the seed-1342 run's number).

    Example:
        `seed_results["1341"].val_bpb` 1.4703 while `…seed1341.txt` reports 1.39697242.

    Legal alternative:
        Copy each seed's headline from its own log; ship one log per claimed seed.

    Known limitations:
        Seeds are matched by number (header seed first, else the file name).
    """

    CODE = "PG402"
    NAME = "seed-claim-mismatch"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-FMT-SUBMISSION-JSON", "R-FMT-LOG-INTEGRITY")

    VALID = [FolderCase("three seeds, three matching logs")]
    INVALID = [
        FolderCase("claimed seed without a log", edits={"train_seed2025.log": None}, severity=Severity.WARNING,
                   message_contains=("2025", "no log")),
        FolderCase("per-seed bpb from another seed", json={"seed_results": {"42": {"val_bpb": 1.17604757}}},
                   message_contains=("seed 42", "1.17604757")),
        FolderCase("log of an undeclared seed", json={"seeds": [42, 1337], "seed_results": {"2025": None}},
                   severity=Severity.WARNING, message_contains=("2025", "not declared")),
    ]

    def run(self, ctx):
        claims = ctx.submission
        if claims is None:
            raise SkipCheck("no readable submission.json")
        declared = [str(s) for s in claims.seeds] or [str(c.seed) for c in claims.seed_claims]
        if not declared:
            raise SkipCheck("submission.json declares no seeds")
        runs = ctx.scored_runs
        by_seed: dict[str, list] = {}
        for run in runs:
            if run.seed is not None:
                by_seed.setdefault(str(run.seed), []).append(run)
        for seed in declared:
            if seed not in by_seed:
                yield self.finding(f"seed {seed} is claimed but no log holds a run of it (runs: "
                                   f"{seeds_text(sorted(by_seed)) if by_seed else 'none'})",
                                   location=Location(claims.path, json_path="seeds"), severity=Severity.WARNING)
        for seed, seed_runs in sorted(by_seed.items()):
            if seed not in declared:
                yield self.finding(f"{run_name(seed_runs[0])} ran seed {seed}, which submission.json has not declared "
                                   f"(declared: {seeds_text(declared)})", location=Location(seed_runs[0].path),
                                   severity=Severity.WARNING)
        for claim in claims.seed_claims:
            runs_of_seed = by_seed.get(str(claim.seed), [])
            if claim.val_bpb is None or not runs_of_seed:
                continue
            if any(same_at_precision(claim.val_bpb, r.headline.val_bpb) for r in runs_of_seed):
                pass
            else:
                run = runs_of_seed[0]
                other = next((m for m in run.record.metrics if same_at_precision(claim.val_bpb, m.val_bpb)), None)
                where = Location(claims.path, json_path=f"{claim.json_path}.val_bpb")
                if other is not None:
                    yield self.finding(
                        f"seed {claim.seed} claims val_bpb {fmt_bpb(claim.val_bpb)}, which is {other.label} at "
                        f"{run.path}:{other.line}; the headline is {run.headline.label} {fmt_bpb(run.headline.val_bpb)}",
                        location=where, severity=Severity.WARNING, related=[run.at(other.line)],
                    )
                else:
                    yield self.finding(
                        f"seed {claim.seed} claims val_bpb {fmt_bpb(claim.val_bpb)} but {run_name(run)} reports "
                        f"{fmt_bpb(run.headline.val_bpb)} ({run.headline.label})",
                        location=where, related=[run.at(run.headline.line)],
                        values={"claimed": claim.val_bpb, "logged": run.headline.val_bpb, "seed": claim.seed},
                    )
            if claim.steps is not None and runs_of_seed[0].record.steps not in (None, claim.steps):
                run = runs_of_seed[0]
                yield self.finding(f"seed {claim.seed} claims {claim.steps:,} steps; {run_name(run)} stopped at "
                                   f"{run.record.steps:,}", location=Location(claims.path, json_path=f"{claim.json_path}.steps"),
                                   severity=Severity.INFO)

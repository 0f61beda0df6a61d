"""PG501 too-few-seeds."""

from __future__ import annotations

from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, SkipCheck


class TooFewSeeds(Check):
    """A record-track submission has fewer than three distinct seeds of one configuration.

    What it checks:
        Distinct seeds among the runs that count as evidence (distinct log files, the last run
        of each, with a final metric), against the track's `min_seeds`. Copies of one log and
        several runs of one seed count once. The severity is the dated ruleset's policy
        (`min_seeds_severity`): a warning under the launch rules, when three seeds were usual
        and single-seed records were merged (R-SIG-README); an error from #1902 (04-28,
        R-SIG-PRACTICE).

    Why it breaks the rules:
        R-SIG-README / R-SIG-PRACTICE: a record needs enough runs to show significance
        (usually three seeds, of the same submitted configuration, #2124); "single-seed
        tiny-margin rows" were excluded (#1902).

    Example:
        One log (NaiveBaseline-style), or four logs of seed 1337 (`2026-03-17_LoRA_TTT`).

    Legal alternative:
        Three or more seeds of the submitted configuration, one log each.

    Known limitations:
        Whether the runs share one configuration is judged from the claims, not diffed.
    """

    CODE = "PG501"
    NAME = "too-few-seeds"
    CATEGORY = Category.STATISTICS
    SEVERITY = Severity.ERROR
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-SIG-README", "R-SIG-PRACTICE")

    VALID = [FolderCase("three seeds")]
    INVALID = [
        FolderCase("two logs under the #1902 practice", edits={"train_seed2025.log": None}, options={"ruleset": "2026-04-28"},
                   message_contains=("2 distinct seeds", "R-SIG-PRACTICE")),
        FolderCase("two logs under the launch rules: a reviewer decides", edits={"train_seed2025.log": None},
                   severity=Severity.WARNING, message_contains=("2 distinct seeds", "R-SIG-README")),
        FolderCase("three logs of one seed", options={"ruleset": "2026-04-28"}, edits={"train_seed2025.log": [(r"seed:2025", "seed:42")],
                                                     "train_seed1337.log": [(r"seed:1337", "seed:42")]},
                   message_contains=("1 distinct seed",)),
    ]

    def run(self, ctx):
        runs = ctx.scored_runs
        if not runs:
            raise SkipCheck("no scored run (PG601/PG901 report it)")
        needed = ctx.limits.min_seeds
        keys = {r.seed if r.seed is not None else f"unknown:{r.path}" for r in runs}
        if len(keys) < needed:
            seeds = sorted(str(k).replace("unknown:", "unknown seed in ") for k in keys)
            policy = ctx.limits.policy
            severity = Severity(policy.min_seeds_severity)
            practice = "needs" if severity is Severity.ERROR else "usually has"
            yield self.finding(
                f"{len(keys)} distinct seed{'s' if len(keys) != 1 else ''} ({', '.join(seeds)}) in {len(runs)} run(s); "
                f"the record track {practice} {needed} (ruleset {ctx.ruleset.id}, {policy.min_seeds_source})",
                severity=severity,
                values={"distinct_seeds": len(keys), "required": needed, "source": policy.min_seeds_source},
            )

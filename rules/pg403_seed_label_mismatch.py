"""PG403 seed-label-mismatch."""

from __future__ import annotations

from pgolf_audit.checkutil import run_name
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import Check, FolderCase, Move, SkipCheck


class SeedLabelMismatch(Check):
    """A log's file name names a different seed than the run printed, or one seed ran twice.

    What it checks:
        The seed printed in a log's header (`seed:N`, `  seed: N`, `seed=N`) against the seed
        in its file name (`train_seed42.log`, `seed_42.log`, `…_s42.txt`), and whether two
        distinct logs ran the same seed (copies of one log are PG407's concern).

    Why it breaks the rules:
        R-SIG-PRACTICE: significance needs independent seeds of one configuration; relabelled
        logs overstate the evidence. `2026-04-30_Random_Linear_Adapter`: three files named for
        seeds 1337/2026/42 all ran seed 1337. `2026-04-18`: `train_seed0.log` ran seed 1337.

    Example:
        `train_seed0.log` whose header says `seed: 1337`.

    Legal alternative:
        Name each log after the seed it ran; run distinct seeds.

    Known limitations:
        A log without a printed seed is identified by its file name only.
    """

    CODE = "PG403"
    NAME = "seed-label-mismatch"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-SIG-PRACTICE", "R-FMT-LOG-INTEGRITY")

    VALID = [FolderCase("file names match headers")]
    INVALID = [
        FolderCase("file named for another seed", edits={"train_seed42.log": Move("train_seed7.log")},
                   message_contains=("train_seed7.log", "42")),
        FolderCase("the same seed twice", edits={"train_seed2025.log": [(r"seed:2025", "seed:42")]},
                   message_contains=("seed 42",)),
    ]

    def run(self, ctx):
        runs = [r for r in ctx.runs if r.duplicate_of is None and not r.superseded]
        if not runs:
            raise SkipCheck("no run to compare")
        for run in runs:
            rec = run.record
            if rec.header_seed is not None and rec.filename_seed is not None and rec.header_seed != rec.filename_seed:
                yield self.finding(f"{run.path} is named for seed {rec.filename_seed} but ran seed {rec.header_seed}",
                                   location=run.at(rec.seed_line), excerpt=ctx.line_text(run.path, rec.seed_line),
                                   values={"file_seed": rec.filename_seed, "header_seed": rec.header_seed})
        seen: dict[int, list] = {}
        for run in runs:
            # an eval-only log re-scores an artifact trained by another run: not another run of the seed
            if run.seed is not None and run.headline is not None and not run.record.eval_only:
                seen.setdefault(run.seed, []).append(run)
        for seed, same in sorted(seen.items()):
            if len(same) > 1:
                yield self.finding(f"{len(same)} runs of seed {seed} ({', '.join(r.label for r in same)}): they are not "
                                   f"independent seeds", location=same[1].at(same[1].record.seed_line))

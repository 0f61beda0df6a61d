"""PG405 readme-claim-mismatch."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bpb, printed_decimals, same_at_precision
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class ReadmeClaimMismatch(Check):
    """The README's headline val_bpb differs from submission.json or the logs.

    What it checks:
        The README's headline score (title line, first bold `val_bpb = X`, "3-seed mean X")
        and per-seed tables against submission.json's `val_bpb` and the logs' per-seed
        headlines, at the README's printed precision.

    Why it breaks the rules:
        R-FMT-LOG-INTEGRITY / R-FMT-REQUIRED-FILES: the README explains the submission; a stale
        headline describes another run. `2026-03-19_WarmdownQuantization`: README "val_bpb =
        1.2154" while submission.json and the log say 1.1574.

    Example:
        README `**val_bpb = 1.2154**`, submission.json `"val_bpb": 1.1574404`.

    Legal alternative:
        Update the README with the final numbers.

    Known limitations:
        README parsing is conservative: numbers it cannot tie to a headline or seed table are
        ignored.
    """

    CODE = "PG405"
    NAME = "readme-claim-mismatch"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-LOG-INTEGRITY", "R-FMT-REQUIRED-FILES")

    VALID = [FolderCase("README, JSON and logs agree")]
    INVALID = [
        FolderCase("stale README headline", edits={"README.md": [(r"\*\*val_bpb = [\d.]+\*\*", "**val_bpb = 1.2154**")]},
                   message_contains=("1.2154",)),
        FolderCase("README seed row from another run", edits={"README.md": [(r"\| 42 \| 1\.\d+", "| 42 | 1.17000000")]},
                   message_contains=("seed 42",)),
    ]

    def run(self, ctx):
        readme = ctx.readme
        if readme is None:
            raise SkipCheck("no readable README.md")
        claims = ctx.submission
        head = readme.headline_bpb or readme.mean_bpb
        where = lambda m: Location(ctx.readme_file, m.line, m.line)  # noqa: E731
        if head is not None:
            decimals = printed_decimals(head.value, head.text)
            if claims and claims.val_bpb is not None and not same_at_precision(head.value, claims.val_bpb, decimals):
                yield self.finding(f"README headline val_bpb {fmt_bpb(head.value)} differs from submission.json "
                                   f"{fmt_bpb(claims.val_bpb)}", location=where(head), excerpt=head.text,
                                   values={"readme": head.value, "submission": claims.val_bpb})
            elif (not claims or claims.val_bpb is None) and ctx.scored_runs:
                mean = ctx.run_mean_bpb()
                if not same_at_precision(head.value, mean, decimals):
                    yield self.finding(f"README headline val_bpb {fmt_bpb(head.value)} differs from the logs' mean "
                                       f"{fmt_bpb(mean)}", location=where(head), excerpt=head.text)
        runs_by_seed: dict[int, list] = {}
        for r in ctx.runs:
            if r.seed is not None and r.headline is not None:
                runs_by_seed.setdefault(r.seed, []).append(r)
        for seed, mention in sorted(readme.seed_bpb.items()):
            seed_runs = runs_by_seed.get(seed)
            if not seed_runs:
                continue
            decimals = printed_decimals(mention.value, mention.text)
            run = seed_runs[-1]
            if not any(same_at_precision(mention.value, m.val_bpb, decimals) for r in seed_runs for m in r.record.metrics):
                yield self.finding(f"README gives seed {seed} val_bpb {fmt_bpb(mention.value)}; its log reports "
                                   f"{fmt_bpb(run.headline.val_bpb)}", location=where(mention), excerpt=mention.text,
                                   related=[run.at(run.headline.line)])

"""PG502 improvement-not-significant."""

from __future__ import annotations

import re
import statistics

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, IncompleteCheck, SkipCheck
from pgolf_audit.stats import (
    best_earlier_record, improvement_test, leaderboard_reference, load_reference, losses_on_candidate_scale, records_root_of,
    run_key,
)

POLICY_TITLE = {"readme": "README rule", "progression": "maintainers' practice"}
EXAMPLE_LOGS = ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")
FINAL_LINE = re.compile(r"^(legal_ttt(?:_exact)? val_loss:)([\d.]+)( val_bpb:)([\d.]+)", re.M)


def shift_all_seed_losses(delta_nats: float) -> dict:
    """Edits that make the example's final lines ``delta_nats`` worse (bpb shifted alike)."""
    def shift(text: str) -> str:
        def repl(m: re.Match) -> str:
            loss, bpb = float(m.group(2)), float(m.group(4))
            digits = len(m.group(2).split(".")[1])
            return f"{m.group(1)}{loss + delta_nats:.{digits}f}{m.group(3)}{bpb * (loss + delta_nats) / loss:.{digits}f}"
        return FINAL_LINE.sub(repl, text)
    return {name: shift for name in EXAMPLE_LOGS}


class ImprovementNotSignificant(Check):
    """The improvement over the reference record is not shown at the required significance.

    What it checks:
        Against a reference record, chosen in this order: `--against FOLDER`; `--records-root
        ROOT` (the best earlier record-track folder by date; in `pgolf-audit pr`, the records of
        the base commit); the best earlier record-track folder of the records tree the folder
        sits in; else the best earlier entry of the bundled leaderboard table
        (`rules/tracks/leaderboard.toml`, derived from the merged records by
        `reference_impl/derive_leaderboard.py`). Two one-sided tests on the runs' val_loss (nats):
        the README policy (improvement >= 0.005 nats at p < 0.01) and the maintainers' later
        practice (any improvement at p < 0.25 against the previous row). Both are reported with
        the improvement, margin, p-value and n; the ruleset says which one decides. Against the
        bundled table (a dated snapshot) a failed test is info, not a warning. Welch's
        test is used when both sides have several runs, a one-sample test against a single
        reference run otherwise. A reference on another tokenizer is compared through its val_bpb
        expressed in the candidate's nats per token.

    Why it breaks the rules:
        R-SIG-README: a record must beat SOTA by >= 0.005 nats with p < 0.01. R-SIG-PRACTICE:
        from #1902 on, each row must beat the previous frontier row with one-sided Welch
        p < 0.25; the README text was not updated, so reviewers report both.

    Example:
        Three seeds 0.0012 nats better than the previous record with p = 0.19: passes the
        practice test, fails the README rule.

    Legal alternative:
        More seeds, or a larger improvement.

    Known limitations:
        "Earlier" is the folder name's date; the leaderboard's own chronology (PR creation
        time, evidence commits) is not consulted.
    """

    CODE = "PG502"
    NAME = "improvement-not-significant"
    CATEGORY = Category.STATISTICS
    SEVERITY = Severity.WARNING
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-SIG-README", "R-SIG-PRACTICE")

    VALID = [
        FolderCase("dated before every merged record: no reference to test against",
                   folder_name="2026-03-01_Example_Int6GPTQLite_EMA_ScoreFirstTTT"),
        FolderCase("0.02 nats better than a 3-seed reference",
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(+0.02))),
    ]
    INVALID = [
        FolderCase("0.001 nats better: under the README margin", message_contains=("README rule", "0.005"),
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(+0.001))),
        FolderCase("worse than the reference", message_contains=("p =",),
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(-0.002))),
        FolderCase("worse than the best earlier merged record of the bundled table: advisory", message_contains=("p =", "advisory"),
                   severity=Severity.INFO),
    ]

    def reference(self, ctx, same):
        """The reference record and how it was chosen: --against, --records-root (or the records
        tree given by the pull-request audit: the base commit's records), the records tree the
        folder sits in, else the bundled leaderboard table. None with the reason when none."""
        opts = ctx.options
        before = ctx.folder_date or ctx.date
        if opts.against is not None:
            ref = load_reference(opts.against, "--against")
            if ref is None:
                raise IncompleteCheck(f"reference {opts.against} has no run with a final val_loss")
            return ref, None
        label = getattr(opts, "records_root_label", None)
        if opts.records_root is not None:
            source = label or f"best earlier record under --records-root {opts.records_root}"
            ref = best_earlier_record(opts.records_root, None if label else before, ctx.folder.root, source, same)
            return ref, None if ref else f"no {'' if label else 'earlier '}record-track folder with runs in {source}"
        root = records_root_of(ctx.folder.root)
        if root is not None:
            ref = best_earlier_record(root, before, ctx.folder.root, "best earlier record-track folder of this records tree", same)
            return ref, None if ref else f"no record-track folder dated before {before or 'this one'} in this records tree"
        ref = leaderboard_reference(before, same)
        return ref, None if ref else f"no merged record dated before {before or 'this folder'} in the bundled leaderboard table"

    def run(self, ctx):
        runs = [r for r in ctx.scored_runs if r.headline.val_loss is not None and r.headline.val_bpb is not None]
        same = run_key([r.headline.val_loss for r in runs], [r.headline.val_bpb for r in runs]) if runs else None
        ref, why_none = self.reference(ctx, same)
        if ref is None:
            ctx.facts["stats"] = {"skipped": why_none}
            raise SkipCheck(why_none)
        if not runs:
            raise IncompleteCheck("no run reports a final val_loss to test")
        losses = [r.headline.val_loss for r in runs]
        ref_losses, conversion = losses_on_candidate_scale(ref, losses, [r.headline.val_bpb for r in runs])
        sig = ctx.limits.significance
        policies = [
            ("readme", sig.readme_min_improvement_nats, sig.readme_p_max),
            ("progression", 0.0, sig.progression_p_max),
        ]
        tests = []
        for policy, margin, p_max in policies:
            res = improvement_test(losses, ref_losses, margin)
            passed = res.p_value is not None and res.p_value < p_max
            tests.append({
                "policy": policy, "policy_title": POLICY_TITLE[policy], "description": res.description,
                "margin_nats": margin, "delta_nats": round(res.delta_nats, 8), "t_statistic": res.t_statistic,
                "df": res.df, "p_value": res.p_value, "p_max": p_max, "passed": passed,
                "deciding": policy == sig.deciding_policy,
            })
        # The bundled table is a dated snapshot of the merged records: against it the result is
        # advisory (info); a records tree, the PR's base commit or --against is the live frontier.
        advisory = ref.path.startswith("leaderboard:")
        ctx.facts["stats"] = {
            "advisory": advisory,
            "n": len(losses), "mean_loss_nats": round(statistics.fmean(losses), 8),
            "std_loss_nats": round(statistics.stdev(losses), 8) if len(losses) > 1 else 0.0,
            "delta_nats": round(statistics.fmean(ref_losses) - statistics.fmean(losses), 8),
            "reference": {"name": ref.name, "path": ref.path, "date": ref.date, "n": len(ref_losses), "source": ref.source,
                          "mean_loss_nats": round(statistics.fmean(ref_losses), 8), "mean_bpb": round(ref.mean_bpb, 8),
                          "conversion": conversion},
            "source_rule": ctx.limits.policy.significance_source,
            "tests": tests,
        }
        for t in tests:
            if t["passed"]:
                continue
            p = "untestable" if t["p_value"] is None else f"p = {t['p_value']:.4g}"
            message = (f"{t['policy_title']}: improvement of {t['delta_nats']:.5f} nats over {ref.name} with {p} "
                       f"(n = {len(losses)} vs {len(ref_losses)}) does not show > {t['margin_nats']:g} nats at p < {t['p_max']:g}")
            if advisory:
                message += " (bundled leaderboard snapshot: advisory; the records tree or the PR's base decides)"
            yield self.finding(message, severity=Severity.WARNING if t["deciding"] and not advisory else Severity.INFO,
                               location=Location(ctx.submission_file) if ctx.submission_file else None,
                               values={k: t[k] for k in ("policy", "delta_nats", "margin_nats", "p_value", "p_max")})

"""PG502 improvement-not-significant."""

from __future__ import annotations

import re
import statistics

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, IncompleteCheck, SkipCheck
from pgolf_audit.stats import best_earlier_record, improvement_test, load_reference

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
        With a reference record (`--against FOLDER`, or `--records-root ROOT` to take the best
        earlier record-track folder by date), two one-sided tests on the runs' val_loss (nats):
        the README policy (improvement >= 0.005 nats at p < 0.01) and the maintainers' later
        practice (any improvement at p < 0.25 against the previous row). Both are reported with
        the improvement, margin, p-value and n; the ruleset says which one decides. Welch's
        test is used when both sides have several runs, a one-sample test against a single
        reference run otherwise.

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
        The reference is what the user names or the best earlier folder in a local tree; the
        leaderboard's own chronology (PR creation time, evidence commits) is not consulted.
    """

    CODE = "PG502"
    NAME = "improvement-not-significant"
    CATEGORY = Category.STATISTICS
    SEVERITY = Severity.WARNING
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-SIG-README", "R-SIG-PRACTICE")

    VALID = [
        FolderCase("no reference given: nothing to test"),
        FolderCase("0.02 nats better than a 3-seed reference",
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(+0.02))),
    ]
    INVALID = [
        FolderCase("0.001 nats better: under the README margin", message_contains=("README rule", "0.005"),
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(+0.001))),
        FolderCase("worse than the reference", message_contains=("p =",),
                   reference=FolderCase("previous record", edits=shift_all_seed_losses(-0.002))),
    ]

    def run(self, ctx):
        opts = ctx.options
        if opts.against is not None:
            ref = load_reference(opts.against, "--against")
            if ref is None:
                raise IncompleteCheck(f"reference {opts.against} has no run with a final val_loss")
        elif opts.records_root is not None:
            ref = best_earlier_record(opts.records_root, ctx.folder_date or ctx.date, ctx.folder.root)
            if ref is None:
                ctx.facts["stats"] = {"skipped": f"no earlier record-track folder with runs under {opts.records_root}"}
                raise SkipCheck(ctx.facts["stats"]["skipped"])
        else:
            ctx.facts["stats"] = {"skipped": "no reference record (use --against FOLDER or --records-root ROOT)"}
            raise SkipCheck(ctx.facts["stats"]["skipped"])
        runs = [r for r in ctx.scored_runs if r.headline.val_loss is not None]
        if not runs:
            raise IncompleteCheck("no run reports a final val_loss to test")
        losses = [r.headline.val_loss for r in runs]
        sig = ctx.limits.significance
        policies = [
            ("readme", sig.readme_min_improvement_nats, sig.readme_p_max),
            ("progression", 0.0, sig.progression_p_max),
        ]
        tests = []
        for policy, margin, p_max in policies:
            res = improvement_test(losses, ref.losses, margin)
            passed = res.p_value is not None and res.p_value < p_max
            tests.append({
                "policy": policy, "policy_title": POLICY_TITLE[policy], "description": res.description,
                "margin_nats": margin, "delta_nats": round(res.delta_nats, 8), "t_statistic": res.t_statistic,
                "df": res.df, "p_value": res.p_value, "p_max": p_max, "passed": passed,
                "deciding": policy == sig.deciding_policy,
            })
        ctx.facts["stats"] = {
            "n": len(losses), "mean_loss_nats": round(statistics.fmean(losses), 8),
            "std_loss_nats": round(statistics.stdev(losses), 8) if len(losses) > 1 else 0.0,
            "delta_nats": round(statistics.fmean(ref.losses) - statistics.fmean(losses), 8),
            "reference": {"name": ref.name, "path": ref.path, "n": len(ref.losses), "source": ref.source,
                          "mean_loss_nats": round(statistics.fmean(ref.losses), 8), "mean_bpb": round(ref.mean_bpb, 8)},
            "tests": tests,
        }
        for t in tests:
            if t["passed"]:
                continue
            p = "untestable" if t["p_value"] is None else f"p = {t['p_value']:.4g}"
            message = (f"{t['policy_title']}: improvement of {t['delta_nats']:.5f} nats over {ref.name} with {p} "
                       f"(n = {len(losses)} vs {len(ref.losses)}) does not show > {t['margin_nats']:g} nats at p < {t['p_max']:g}")
            yield self.finding(message, severity=Severity.WARNING if t["deciding"] else Severity.INFO,
                               location=Location(ctx.submission_file) if ctx.submission_file else None,
                               values={k: t[k] for k in ("policy", "delta_nats", "margin_nats", "p_value", "p_max")})

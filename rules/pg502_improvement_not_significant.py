"""PG502 improvement-not-significant."""

from __future__ import annotations

import re

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, IncompleteCheck, SkipCheck
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

    def run(self, ctx):
        measured = ctx.significance  # measured once on the context; the report's stats read it too
        if measured.error is not None:
            raise measured.error
        if measured.skipped is not None:
            raise SkipCheck(measured.skipped)
        if measured.incomplete is not None:
            raise IncompleteCheck(measured.incomplete)
        ref = measured.reference
        for t in measured.tests:
            if t["passed"]:
                continue
            p = "untestable" if t["p_value"] is None else f"p = {t['p_value']:.4g}"
            message = (f"{t['policy_title']}: improvement of {t['delta_nats']:.5f} nats over {ref.name} with {p} "
                       f"(n = {measured.n} vs {measured.n_reference}) does not show > {t['margin_nats']:g} nats at p < {t['p_max']:g}")
            if measured.advisory:
                message += " (bundled leaderboard snapshot: advisory; the records tree or the PR's base decides)"
            yield self.finding(message, severity=Severity.WARNING if t["deciding"] and not measured.advisory else Severity.INFO,
                               location=Location(ctx.submission_file) if ctx.submission_file else None,
                               values={k: t[k] for k in ("policy", "delta_nats", "margin_nats", "p_value", "p_max")})

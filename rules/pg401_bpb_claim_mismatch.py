"""PG401 bpb-claim-mismatch."""

from __future__ import annotations

from pgolf_audit.checkutil import alternative_line_means, claim_decimals, fmt_bpb, matching_subsets, required_runs, run_name, same_at_precision
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class BpbClaimMismatch(Check):
    """The claimed val_bpb is not the mean of the runs' final (headline) metric lines.

    What it checks:
        submission.json's `val_bpb` against the mean of every distinct run's headline (the
        last post-training, non-diagnostic metric line), compared at the precision the claim is
        printed with. When it is not the mean, the check says what it does match: one seed
        (best or first run), a subset of the runs, or a non-headline line (an earlier sliding
        line, a pre-quantization value); matching nothing is an error.

    Why it breaks the rules:
        R-FMT-SUBMISSION-JSON / R-SIG-README: the claim is the mean over the submitted seeds,
        and must match the logs. 11 merged folders reported one run although they had several;
        two (MLP3x_QAT, LegendreGPT) match no log.

    Example:
        `val_bpb` 1.15861696 = seed 3 only (best of 3), while the 3-seed mean is 1.15981.

    Legal alternative:
        Claim the mean of the headline lines of all submitted seeds.

    Known limitations:
        Which line is the "headline" follows the headline rule of the log catalogue; a
        submission that legitimately reports an earlier line (a failed final TTT pass, as in
        2026-04-04 SP4096) is reported as a warning naming the substituted line.
    """

    CODE = "PG401"
    NAME = "bpb-claim-mismatch"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-FMT-SUBMISSION-JSON", "R-SIG-README")

    VALID = [FolderCase("claim is the 3-seed mean"), FolderCase("claim rounded to 4 decimals", json={"val_bpb": 1.176})]
    INVALID = [
        FolderCase("best seed claimed", json={"val_bpb": 1.17589788}, severity=Severity.WARNING,
                   message_contains=("seed 2025",)),
        FolderCase("claim matches no run", json={"val_bpb": 1.1501}, message_contains=("matches no",)),
        FolderCase("claim is the pre-TTT sliding number", severity=Severity.WARNING,
                   json={"val_bpb": 1.18304342}, message_contains=("final_int6_sliding_window_exact",)),
        FolderCase("claim uses one seed's pre-TTT line", severity=Severity.WARNING,
                   json={"val_bpb": round((1.18304342 + 1.17604757 + 1.17589788) / 3, 8)},
                   message_contains=("train_seed42.log", "instead of its headline")),
    ]

    def run(self, ctx):
        claims = ctx.submission
        if claims is None or claims.val_bpb is None:
            raise SkipCheck("no claimed val_bpb (PG607 reports it)")
        claim = claims.val_bpb
        decimals = claim_decimals(claim)
        runs = required_runs(ctx)
        key = claims.key_used.get("val_bpb", "val_bpb")
        where = Location(claims.path, json_path=key)
        mean = ctx.run_mean_bpb(runs)
        values = {"claimed": claim, "mean_of_runs": round(mean, 8), "runs": len(runs),
                  "per_run": {r.label: r.headline.val_bpb for r in runs}}
        if same_at_precision(claim, mean, decimals):
            return
        subsets = matching_subsets(claim, runs, decimals)
        if subsets:
            subset = subsets[0]
            if len(subset) == 1:
                run = subset[0]
                rank = sorted(r.headline.val_bpb for r in runs).index(run.headline.val_bpb) + 1
                what = "the best" if rank == 1 else f"number {rank} of {len(runs)}"
                message = (f"claimed {key} {fmt_bpb(claim)} is {run_name(run)} alone ({what} by val_bpb), not the mean "
                           f"of all {len(runs)} runs ({fmt_bpb(mean)})")
            else:
                names = ", ".join(run_name(r) for r in subset)
                message = (f"claimed {key} {fmt_bpb(claim)} is the mean of {len(subset)} of {len(runs)} runs ({names}); "
                           f"all runs average {fmt_bpb(mean)}")
            yield self.finding(message, location=where, severity=Severity.WARNING, values=values,
                               related=[r.at(r.headline.line) for r in subset])
            return
        swapped = alternative_line_means(claim, runs, decimals) if len(runs) > 1 else None
        if swapped:
            names = "; ".join(f"{run_name(r)} {m.label} {fmt_bpb(m.val_bpb)} (line {m.line}) instead of its headline "
                              f"{r.headline.label} {fmt_bpb(r.headline.val_bpb)}" for r, m in swapped)
            yield self.finding(
                f"claimed {key} {fmt_bpb(claim)} is the mean of the runs only when {names}; the mean of the headlines "
                f"is {fmt_bpb(mean)}: a reviewer must decide which line is the submitted metric",
                location=where, severity=Severity.WARNING, values=values, related=[r.at(m.line) for r, m in swapped],
            )
            return
        for run in ctx.runs:
            for metric in [*run.record.metrics, *run.record.val_steps]:
                if metric is run.headline:
                    continue
                if same_at_precision(claim, metric.val_bpb, decimals):
                    label = getattr(metric, "label", None) or f"step {metric.step} validation"
                    yield self.finding(
                        f"claimed {key} {fmt_bpb(claim)} matches {label} at {run.label}:{metric.line}, not a headline "
                        f"(mean of headlines {fmt_bpb(mean)})",
                        location=where, severity=Severity.WARNING, values=values,
                        related=[run.at(metric.line)], excerpt=ctx.line_text(run.path, metric.line),
                    )
                    return
        per_run = "; ".join(f"{run_name(r)} {fmt_bpb(r.headline.val_bpb)}" for r in runs)
        yield self.finding(f"claimed {key} {fmt_bpb(claim)} matches no logged value: mean of {len(runs)} runs "
                           f"{fmt_bpb(mean)} ({per_run})", location=where, values=values)

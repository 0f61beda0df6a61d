"""The significance measurement of a folder: its runs against a reference record.

Measured once per audit on the context (``ctx.significance``); PG502 reads it to decide its
findings, and the report's ``stats`` section is this measurement, so ignoring PG502 changes
PG502's findings and outcome only, never the numbers a reviewer sees.

The reference is chosen in this order: ``--against``; ``--records-root`` (or, in
``pgolf-audit pr``, the base commit's records); the best earlier record-track folder of the
records tree the folder sits in; else the best earlier entry of the bundled leaderboard table.
Two one-sided tests on the runs' val_loss (nats): the README policy and the maintainers' later
practice; the ruleset says which one decides.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .stats import (
    ReferenceRuns, best_earlier_record, improvement_test, leaderboard_reference, load_reference,
    losses_on_candidate_scale, records_root_of, run_key,
)

if TYPE_CHECKING:
    from .context import AuditContext

POLICY_TITLE = {"readme": "README rule", "progression": "maintainers' practice"}


@dataclass
class Significance:
    """The measurement, or why there is none.

    ``stats`` is the report's ``stats`` section ({} when nothing was measured; ``{"skipped":
    why}`` when no reference exists). ``skipped`` / ``incomplete`` say why no test was made;
    ``error`` is the exception that stopped the measurement (PG502 reports it as a crash).
    """

    stats: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    incomplete: str | None = None
    error: BaseException | None = None
    reference: ReferenceRuns | None = None
    n: int = 0
    n_reference: int = 0
    advisory: bool = False
    tests: list[dict[str, Any]] = field(default_factory=list)


def choose_reference(ctx: "AuditContext", same: tuple | None) -> tuple[ReferenceRuns | None, str | None]:
    """The reference record, or None with the reason there is none."""
    opts = ctx.options
    before = ctx.folder_date or ctx.date
    if opts.against is not None:
        ref = load_reference(opts.against, "--against")
        if ref is None:
            raise _Incomplete(f"reference {opts.against} has no run with a final val_loss")
        return ref, None
    label = opts.records_root_label
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


class _Incomplete(Exception):
    pass


def measure(ctx: "AuditContext") -> Significance:
    """The significance of the folder's improvement (record track only: the non-record track
    has no significance requirement)."""
    if not ctx.is_record_track:
        return Significance(skipped=f"does not apply to {ctx.limits_track}")
    try:
        return _measure(ctx)
    except _Incomplete as exc:
        return Significance(incomplete=str(exc))
    except Exception as exc:  # reported by PG502 as its crash; the report's stats stay empty
        return Significance(error=exc)


def _measure(ctx: "AuditContext") -> Significance:
    runs = [r for r in ctx.scored_runs if r.headline.val_loss is not None and r.headline.val_bpb is not None]
    same = run_key([r.headline.val_loss for r in runs], [r.headline.val_bpb for r in runs]) if runs else None
    ref, why_none = choose_reference(ctx, same)
    if ref is None:
        return Significance(stats={"skipped": why_none}, skipped=why_none)
    if not runs:
        return Significance(incomplete="no run reports a final val_loss to test")
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
    stats = {
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
    return Significance(stats=stats, reference=ref, n=len(losses), n_reference=len(ref_losses), advisory=advisory,
                        tests=tests)

"""Significance of an improvement over a reference record (one-sided tests on nats).

scipy's t-tests are used rather than a hand-rolled Student-t CDF: they are exact, maintained
and handle the one-sided alternative directly.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as scipy_stats

from .folder import FolderError, RecordFolder, discover_record_folders, track_from_path
from .rulebase import RECORD_TRACK


@dataclass(frozen=True)
class TestResult:
    description: str
    n_candidate: int
    n_reference: int
    delta_nats: float       # reference mean - candidate mean (positive = improvement)
    margin_nats: float
    t_statistic: float | None
    df: float | None
    p_value: float | None


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def improvement_test(candidate: list[float], reference: list[float], margin: float) -> TestResult:
    """One-sided test of H1: mean(candidate) < mean(reference) - margin (lower loss is better).

    Welch's two-sample test when both sides have two or more runs; a one-sample test against
    the reference value when the reference is a single run (as the early records did); no
    test (p None) when the candidate has a single run.
    """
    delta = statistics.fmean(reference) - statistics.fmean(candidate)
    n_c, n_r = len(candidate), len(reference)
    if n_c < 2:
        return TestResult("cannot test: a single candidate run has no variance", n_c, n_r, delta, margin, None, None, None)
    shifted = [r - margin for r in reference]
    if n_r >= 2:
        description = f"one-sided Welch t-test, improvement > {margin:g} nats"
        if _sd(candidate) == 0 and _sd(reference) == 0:
            p = 0.0 if delta > margin else 1.0
            return TestResult(description, n_c, n_r, delta, margin, math.copysign(math.inf, margin - delta), None, p)
        res = scipy_stats.ttest_ind(candidate, shifted, equal_var=False, alternative="less")
        var_c, var_r = _sd(candidate) ** 2 / n_c, _sd(reference) ** 2 / n_r
        df = (var_c + var_r) ** 2 / ((var_c**2 / (n_c - 1) if n_c > 1 else 0) + (var_r**2 / (n_r - 1) if n_r > 1 else 0))
        return TestResult(description, n_c, n_r, delta, margin, float(res.statistic), float(df), float(res.pvalue))
    description = f"one-sided one-sample t-test against the reference run, improvement > {margin:g} nats"
    if _sd(candidate) == 0:
        p = 0.0 if delta > margin else 1.0
        return TestResult(description, n_c, n_r, delta, margin, None, float(n_c - 1), p)
    res = scipy_stats.ttest_1samp(candidate, shifted[0], alternative="less")
    return TestResult(description, n_c, n_r, delta, margin, float(res.statistic), float(n_c - 1), float(res.pvalue))


@dataclass(frozen=True)
class ReferenceRuns:
    name: str
    path: str
    date: str | None
    losses: list[float]
    bpbs: list[float]
    source: str   # "--against" | "--records-root"

    @property
    def mean_bpb(self) -> float:
        return statistics.fmean(self.bpbs)


def load_reference(folder: Path, source: str) -> ReferenceRuns | None:
    """The headline val_loss/val_bpb of a reference record's runs, read the same way as the
    audited folder's (distinct logs, last run of each). None when it has no usable run."""
    from .context import AuditContext, AuditOptions

    try:
        ctx = AuditContext(RecordFolder.open(folder), AuditOptions())
    except FolderError:
        return None
    runs = [r for r in ctx.scored_runs if r.headline.val_loss is not None]
    if not runs:
        return None
    return ReferenceRuns(
        name=ctx.name, path=str(folder), date=ctx.folder_date,
        losses=[r.headline.val_loss for r in runs], bpbs=[r.headline.val_bpb for r in runs], source=source,
    )


def best_earlier_record(root: Path, before: str | None, exclude: Path) -> ReferenceRuns | None:
    """The record-track folder under ``root`` dated strictly before ``before`` with the lowest
    mean val_bpb (the frontier the candidate must beat)."""
    best: ReferenceRuns | None = None
    for folder in discover_record_folders(root, max_depth=5):
        if folder.resolve() == exclude.resolve() or track_from_path(folder) != RECORD_TRACK:
            continue
        date = folder.name[:10]
        if before is None or not date[:4].isdigit() or date >= before:
            continue
        ref = load_reference(folder, "--records-root")
        if ref is not None and (best is None or ref.mean_bpb < best.mean_bpb):
            best = ref
    return best

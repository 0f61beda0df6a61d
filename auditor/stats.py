"""Significance of an improvement over a reference record (one-sided tests on nats).

scipy's t-tests are used rather than a hand-rolled Student-t CDF: they are exact, maintained
and handle the one-sided alternative directly.
"""

from __future__ import annotations

import math
import statistics
import tomllib
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from scipy import stats as scipy_stats

from .folder import TRACK_DIR_RE, FolderError, RecordFolder, discover_record_folders, folder_date, track_from_path
from .runs import log_candidates, read_logs, runs_of, scored_runs, training_logs
from .tracks import RECORD_TRACK


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


@contextmanager
def _quiet_scipy() -> Iterator[None]:
    """scipy warns on stderr ("Precision loss occurred in moment calculation") when logged
    runs are nearly identical; the test still runs and the audit reports its result, so the
    warning would only be noise in the CLI's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


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
        with _quiet_scipy():
            res = scipy_stats.ttest_ind(candidate, shifted, equal_var=False, alternative="less")
        var_c, var_r = _sd(candidate) ** 2 / n_c, _sd(reference) ** 2 / n_r
        df = (var_c + var_r) ** 2 / ((var_c**2 / (n_c - 1) if n_c > 1 else 0) + (var_r**2 / (n_r - 1) if n_r > 1 else 0))
        return TestResult(description, n_c, n_r, delta, margin, float(res.statistic), float(df), float(res.pvalue))
    description = f"one-sided one-sample t-test against the reference run, improvement > {margin:g} nats"
    if _sd(candidate) == 0:
        p = 0.0 if delta > margin else 1.0
        return TestResult(description, n_c, n_r, delta, margin, None, float(n_c - 1), p)
    with _quiet_scipy():
        res = scipy_stats.ttest_1samp(candidate, shifted[0], alternative="less")
    return TestResult(description, n_c, n_r, delta, margin, float(res.statistic), float(n_c - 1), float(res.pvalue))


@dataclass(frozen=True)
class ReferenceRuns:
    name: str
    path: str
    date: str | None
    losses: list[float]
    bpbs: list[float]
    source: str   # how it was chosen, in words ("--against", "best earlier record in the records tree", ...)

    @property
    def mean_bpb(self) -> float:
        return statistics.fmean(self.bpbs)

    @property
    def ratio(self) -> float | None:
        """val_bpb / val_loss: bytes per token of the tokenizer (see bpb_ratios.toml)."""
        pairs = [b / l for b, l in zip(self.bpbs, self.losses) if l]
        return statistics.fmean(pairs) if pairs else None


# Two tokenizers whose bpb/loss ratios differ by more than this are not compared in nats per token.
RATIO_REL_TOLERANCE = 0.005


def losses_on_candidate_scale(ref: ReferenceRuns, cand_losses: list[float], cand_bpbs: list[float]) -> tuple[list[float], str | None]:
    """The reference's per-run losses in the candidate's nats per token.

    Nats per token are only comparable under one tokenizer. When the reference used another one
    (its val_bpb/val_loss ratio differs), its val_bpb is expressed in the candidate's nats per
    token through the candidate's own ratio, so Δ keeps meaning "nats on the candidate's tokens".
    """
    pairs = [b / l for b, l in zip(cand_bpbs, cand_losses) if l]
    cand_ratio = statistics.fmean(pairs) if pairs else None
    ref_ratio = ref.ratio
    if cand_ratio is None or ref_ratio is None or abs(ref_ratio / cand_ratio - 1) <= RATIO_REL_TOLERANCE:
        return list(ref.losses), None
    return ([b / cand_ratio for b in ref.bpbs],
            f"another tokenizer (val_bpb/val_loss {ref_ratio:.4f} vs {cand_ratio:.4f}): its val_bpb is converted to "
            f"nats per candidate token")


@lru_cache(maxsize=512)
def _load(folder: str) -> tuple | None:
    try:
        record = RecordFolder.open(Path(folder))
        scored = scored_runs(runs_of(training_logs(read_logs(record, log_candidates(record)))))
        runs = [r for r in scored if r.headline.val_loss is not None and r.headline.val_bpb is not None]
    except FolderError:
        return None
    except Exception:  # a reference that cannot be read is skipped, never a crash of the candidate's audit
        return None
    if not runs:
        return None
    return (record.name, folder_date(record.name), tuple(r.headline.val_loss for r in runs), tuple(r.headline.val_bpb for r in runs))


def load_reference(folder: Path, source: str) -> ReferenceRuns | None:
    """The headline val_loss/val_bpb of a reference record's runs, read the same way as the
    audited folder's (distinct logs, last run of each). None when it has no usable run."""
    loaded = _load(str(folder))
    if loaded is None:
        return None
    name, date, losses, bpbs = loaded
    return ReferenceRuns(name=name, path=str(folder), date=date, losses=list(losses), bpbs=list(bpbs), source=source)


def records_root_of(folder: Path) -> Path | None:
    """The records tree a folder sits in (``<root>/track_*/<folder>`` with at least one other
    record-track folder), or None."""
    me = folder.resolve()
    parent = me.parent
    if not TRACK_DIR_RE.match(parent.name):
        return None
    track = parent.parent / RECORD_TRACK
    try:
        others = [p for p in track.iterdir() if p.is_dir() and p.resolve() != me]
    except OSError:
        return None
    return parent.parent if others else None


def run_key(losses: list[float], bpbs: list[float]) -> tuple:
    """The runs of a record as a comparable value: a reference with exactly the candidate's runs
    is the same record (re-filed, moved or copied), never an earlier one to beat."""
    return tuple(sorted(zip((round(x, 8) for x in losses), (round(x, 8) for x in bpbs))))


def best_earlier_record(root: Path, before: str | None, exclude: Path, source: str = "--records-root",
                        same: tuple | None = None) -> ReferenceRuns | None:
    """The record-track folder under ``root`` with the lowest mean val_bpb (the frontier the
    candidate must beat), among those dated strictly before ``before`` when it is given, and
    never the candidate's own runs (``same``)."""
    best: ReferenceRuns | None = None
    for folder in discover_record_folders(root, max_depth=5):
        if folder.resolve() == exclude.resolve() or track_from_path(folder) != RECORD_TRACK:
            continue
        date = folder.name[:10]
        if before is not None and (not date[:4].isdigit() or date >= before):
            continue
        ref = load_reference(folder, source)
        if ref is None or (same is not None and run_key(ref.losses, ref.bpbs) == same):
            continue
        if best is None or ref.mean_bpb < best.mean_bpb:
            best = ref
    return best


# ---- the bundled leaderboard table (rules/tracks/leaderboard.toml) -------------------------

@lru_cache(maxsize=1)
def leaderboard() -> dict:
    text = resources.files("pgolf_audit.rules").joinpath("tracks", "leaderboard.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def leaderboard_reference(before: str | None, same: tuple | None = None) -> ReferenceRuns | None:
    """The best merged record-track entry of the bundled table dated strictly before ``before``
    (the whole table when the date is unknown)."""
    table = leaderboard()
    commit = table.get("provenance", {}).get("corpus_commit", "")
    best: ReferenceRuns | None = None
    for entry in table.get("records", []):
        if before is not None and entry["date"] >= before:
            continue
        ref = ReferenceRuns(name=entry["name"], path=f"leaderboard:{entry['name']}", date=entry["date"],
                            losses=list(entry["val_loss"]), bpbs=list(entry["val_bpb"]),
                            source=f"bundled leaderboard table (merged records at {commit[:12]})")
        if same is not None and run_key(ref.losses, ref.bpbs) == same:
            continue
        if best is None or ref.mean_bpb < best.mean_bpb:
            best = ref
    return best

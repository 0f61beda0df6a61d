"""Small helpers shared by the checks: number comparison at printed precision, formatting."""

from __future__ import annotations

import itertools
import re
import statistics
from typing import TYPE_CHECKING, Iterable, Sequence

from .formatting import bpb_text
from .rulebase import IncompleteCheck

if TYPE_CHECKING:
    from .context import AuditContext, Run


def decimals_of(value: float) -> int:
    """Digits after the point in the shortest repr (what the JSON or log printed)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        return 10
    return len(text.split(".")[1]) if "." in text else 0


# JSON drops trailing zeros (1.2200 reads as 1.22) and the leaderboard prints four decimals:
# a claim is never compared more loosely than that.
MIN_CLAIM_DECIMALS = 4


def claim_decimals(value: float) -> int:
    """The precision a JSON-claimed bpb is compared at."""
    return max(decimals_of(value), MIN_CLAIM_DECIMALS)


def printed_decimals(value: float, text: str | None) -> int:
    """Digits after the point of ``value`` as printed in ``text`` (a README line, say), where
    ``repr`` would lose trailing zeros ("1.17000000" is 8 decimals, not 2)."""
    for token in re.findall(r"\d+\.\d+", text or ""):
        if float(token) == value:
            return len(token.split(".")[1])
    return decimals_of(value)


def same_at_precision(claimed: float, measured: float, decimals: int | None = None, floor: float = 1e-8) -> bool:
    """Whether ``measured`` agrees with ``claimed`` at the precision ``claimed`` was printed
    with: within one unit in the last printed place, so that both rounded and truncated
    values agree (never tighter than ``floor``)."""
    d = claim_decimals(claimed) if decimals is None else decimals
    tolerance = max(10 ** (-d), floor) + 1e-12
    return abs(claimed - measured) <= tolerance


def fmt_bytes(n: int | float | None) -> str:
    return "unknown" if n is None else f"{int(n):,}"


def fmt_s(x: float | None, digits: int = 3) -> str:
    return "unknown" if x is None else f"{x:,.{digits}f} s"


def fmt_bpb(x: float | None) -> str:
    return "unknown" if x is None else bpb_text(x)


def seeds_text(seeds: Iterable) -> str:
    items = [str(s) for s in seeds]
    return ", ".join(items) if items else "none"


def matching_subsets(target: float, runs: Sequence["Run"], decimals: int) -> list[tuple["Run", ...]]:
    """Non-empty subsets of runs whose headline mean matches ``target`` at its precision,
    smallest first (runs capped at 10 to keep this bounded)."""
    runs = [r for r in runs if r.headline is not None][:10]
    found = []
    for size in range(1, len(runs) + 1):
        for combo in itertools.combinations(runs, size):
            mean = statistics.fmean(r.headline.val_bpb for r in combo)
            if same_at_precision(target, mean, decimals):
                found.append(combo)
    return found


def step_seconds(run: "Run") -> float:
    """Average step time of a run in seconds: logged, else train time over steps, else 0."""
    rec = run.record
    if rec.step_avg_ms:
        return rec.step_avg_ms / 1000.0
    if rec.train_time_ms and rec.steps:
        return rec.train_time_ms / rec.steps / 1000.0
    return 0.0


def run_name(run: "Run") -> str:
    seed = f"seed {run.seed}" if run.seed is not None else "seed unknown"
    kind = ", eval-only" if run.record.eval_only else ""
    return f"{run.label} ({seed}{kind})"


MAX_COMBINATIONS = 4096


def alternative_line_means(target: float, runs: Sequence["Run"], decimals: int):
    """A choice of one final metric line per run (headline or another non-diagnostic final
    line) whose mean matches ``target``, preferring the fewest substitutions; None when no
    choice within MAX_COMBINATIONS does. Returns [(run, metric), ...] for substituted runs."""
    options = []
    for run in runs:
        alternatives = [m for m in run.record.metrics if m is not run.headline and not m.diagnostic]
        options.append([run.headline, *alternatives])
    total = 1
    for o in options:
        total *= len(o)
    if total > MAX_COMBINATIONS or total == 1:
        return None
    best = None
    for choice in itertools.product(*options):
        mean = statistics.fmean(m.val_bpb for m in choice)
        if same_at_precision(target, mean, decimals):
            swapped = [(run, m) for run, m in zip(runs, choice) if m is not run.headline]
            if best is None or len(swapped) < len(best):
                best = swapped
    return best


def required_runs(ctx: "AuditContext", scored: bool = True):
    """The scored runs (or all evidence runs, with or without a final metric), or
    IncompleteCheck when there are none to check."""
    runs = ctx.scored_runs if scored else ctx.evidence_runs
    if not runs:
        if not ctx.log_candidates:
            raise IncompleteCheck("no train log in the folder")
        raise IncompleteCheck("no log holds a readable run with a final val_bpb line")
    return runs

"""Small helpers shared by the checks: number comparison at printed precision, formatting."""

from __future__ import annotations

import itertools
import statistics
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from .context import AuditContext, Run


def decimals_of(value: float) -> int:
    """Digits after the point in the shortest repr (what the JSON or log printed)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        return 10
    return len(text.split(".")[1]) if "." in text else 0


def same_at_precision(claimed: float, measured: float, decimals: int | None = None, floor: float = 1e-8) -> bool:
    """Whether ``measured`` rounds to ``claimed`` at the precision ``claimed`` was printed with
    (half a unit in the last printed place; never tighter than ``floor``)."""
    d = decimals_of(claimed) if decimals is None else decimals
    tolerance = max(0.5 * 10 ** (-d), floor) + 1e-12
    return abs(claimed - measured) <= tolerance


def fmt_bytes(n: int | float | None) -> str:
    return "unknown" if n is None else f"{int(n):,}"


def fmt_s(x: float | None, digits: int = 3) -> str:
    return "unknown" if x is None else f"{x:,.{digits}f} s"


def fmt_bpb(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.8f}".rstrip("0").rstrip(".")


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


def run_name(run: "Run") -> str:
    seed = f"seed {run.seed}" if run.seed is not None else "seed unknown"
    return f"{run.label} ({seed})"


def required_runs(ctx: "AuditContext"):
    """The scored runs, or IncompleteCheck when there are none to check."""
    from .rulebase import IncompleteCheck

    runs = ctx.scored_runs
    if not runs:
        if not ctx.log_candidates:
            raise IncompleteCheck("no train log in the folder")
        raise IncompleteCheck("no log holds a readable run with a final val_bpb line")
    return runs

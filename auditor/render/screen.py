"""The first screen of a review: the verdict, the finding that decides it, the numbers a
maintainer checks first, and what to do. Computed from the canonical document only.

The deciding finding is the first live finding in decisiveness order (see
``pgolf_audit.model.decisive_order``): for FAIL the most decisive non-meta error, for
INCOMPLETE what could not be checked, for NEEDS_REVIEW the most decisive warning.
"""

from __future__ import annotations

from typing import Any

from ..model import CONFIDENCE_RANK, DECISIVENESS, Category, Confidence

SEVERITY_RANK = {"error": 2, "warning": 1, "info": 0}
REASON_MAX = 240
CHANGES_MAX = 4


def _category_rank(name: Any) -> int:
    try:
        return DECISIVENESS[Category(name)]
    except ValueError:
        return 9


def _confidence_rank(name: Any) -> int:
    try:
        return CONFIDENCE_RANK[Confidence(name)]
    except ValueError:
        return 3


def order_key(f: dict[str, Any]) -> tuple:
    loc = f.get("location") or {}
    return (-SEVERITY_RANK.get(f.get("severity"), -1), _category_rank(f.get("category")),
            _confidence_rank(f.get("confidence")), str(f.get("code")), str(loc.get("path") or ""))


def ordered(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings in decisiveness order (a report read back from JSON is not trusted to be sorted)."""
    return sorted(findings, key=order_key)


def problems(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each problem once: the occurrences of one code at one severity (once per seed, per log,
    per file) fold into the most decisive one, which lists the others under ``covers``."""
    heads: dict[tuple, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for f in ordered(findings):
        key = (f.get("code"), f.get("severity"))
        head = heads.get(key)
        if head is None:
            head = heads[key] = dict(f, covers=[])
            out.append(head)
            continue
        values = (f.get("evidence") or {}).get("values") or {}
        head["covers"].append({"location": f.get("location"), "message": f.get("message"), "seed": values.get("seed")})
    return out


def shorten(text: Any, limit: int = REASON_MAX) -> str:
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    # Never leave a code span open.
    if cut.count("`") % 2:
        cut = cut[:cut.rfind("`")].rstrip()
    return cut + " …"


def deciding(r: dict[str, Any]) -> dict[str, Any] | None:
    live = problems(r.get("findings") or [])
    verdict = r.get("verdict")
    if verdict == "FAIL":
        pick = [f for f in live if f.get("severity") == "error" and f.get("category") != "meta"]
    elif verdict == "INCOMPLETE":
        pick = [f for f in live if f.get("severity") == "error" and f.get("category") == "meta"]
    elif verdict == "NEEDS_REVIEW":
        pick = [f for f in live if f.get("severity") == "warning"]
    else:
        pick = []
    return pick[0] if pick else None


def _problem_list(findings: list[dict[str, Any]]) -> str:
    names = []
    for f in findings:
        label = f"{f.get('code')} {f.get('name')}"
        if label not in names:
            names.append(label)
    more = len(names) - CHANGES_MAX
    text = ", ".join(names[:CHANGES_MAX])
    return text + (f" and {more} more" if more > 0 else "")


def screen(r: dict[str, Any]) -> dict[str, Any]:
    """What the first screen says: reason, action, and whether significance applies."""
    verdict = r.get("verdict")
    live = problems(r.get("findings") or [])
    errors = [f for f in live if f.get("severity") == "error"]
    warnings = [f for f in live if f.get("severity") == "warning"]
    decide = deciding(r)
    not_checked = r.get("not_checked") or []
    stats = r.get("stats") or {}
    if verdict == "PASS":
        reason = "every selected check ran; none reported a problem at warning or error level"
        action, why = "merge", "nothing to fix"
        if stats.get("advisory") and any(t.get("deciding") and not t.get("passed") for t in stats.get("tests") or []):
            why = ("nothing to fix; the improvement is not shown against the bundled leaderboard snapshot: "
                   "confirm against the live leaderboard")
    elif verdict == "FAIL":
        reason = decide["message"] if decide else "an error-level problem"
        action = "reject"
        why = f"{decide['code']} {decide['name']}" if decide else "error-level problem"
        rest = [f for f in errors if f.get("code") != decide.get("code") and f.get("category") != "meta"] if decide else []
        if rest:
            why += f"; also {_problem_list(rest)}"
    elif verdict == "INCOMPLETE":
        if decide:
            reason = decide["message"]
        elif not_checked:
            reason = f"could not check {not_checked[0]}"
        else:
            reason = "part of the audit could not be completed"
        action = "changes needed"
        why = "make the folder checkable (" + (f"{decide['code']} {decide['name']}" if decide else shorten(not_checked[0] if not_checked else "see Not checked", 120)) + ")"
        if warnings:
            why += f"; then {_problem_list(warnings)}"
    else:
        reason = decide["message"] if decide else "a reviewer's decision is needed"
        action = "changes needed"
        why = _problem_list(warnings) or "see findings"
    return {
        "deciding": decide,
        "reason": shorten(reason),
        "action": action,
        "why": shorten(why, 300),
        "problems": live,
        "counts": {"error": len(errors), "warning": len(warnings),
                   "info": sum(f.get("severity") == "info" for f in live)},
    }

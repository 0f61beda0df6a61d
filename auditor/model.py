"""The one result model that every renderer reads.

A rule or check produces ``Finding`` objects; every rule that was considered leaves one
``CheckOutcome``; a folder's ``FolderResult`` holds both, the claims and the measured values,
and a verdict computed from them. Several folders make one ``AuditReport``. The JSON
document (``to_json``) is the canonical form: Markdown, text, SARIF and annotations are all
rendered from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from .rerun.result import RerunResult

SCHEMA_VERSION = "1"

# Exit codes of every command that audits: pass (or only findings below --fail-on), findings
# at or above --fail-on, an incomplete audit or a usage error.
EXIT_OK, EXIT_FINDINGS, EXIT_INCOMPLETE = 0, 1, 2


class Severity(str, Enum):
    ERROR = "error"      # disqualifying
    WARNING = "warning"  # needs a human reviewer's decision
    INFO = "info"        # worth knowing; never changes the verdict

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Confidence(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Category(str, Enum):
    LEGALITY = "legality"          # PG1xx evaluation integrity
    ARTIFACT = "artifact"          # PG2xx size and byte accounting of the artifact
    TIME = "time"                  # PG3xx wallclock budgets
    CONSISTENCY = "consistency"    # PG4xx logs vs submission.json vs README
    STATISTICS = "statistics"      # PG5xx seeds and significance
    PACKAGING = "packaging"        # PG6xx folder shape, names, PR shape
    METRIC = "metric"              # PG7xx val_bpb computation and validation set
    RERUN = "rerun"                # PG8xx reproduction measured from outside
    META = "meta"                  # PG9xx the auditor could not do its job


class CheckStatus(str, Enum):
    PASS = "pass"            # ran, found nothing at warning or above
    FAIL = "fail"            # ran, reported at least one warning or error
    SKIP = "skip"            # not applicable or not selected; reason says why
    INCOMPLETE = "incomplete"  # could not be completed on this input (fail closed)
    ERROR = "error"          # the check itself crashed


class Verdict(str, Enum):
    PASS = "PASS"
    NEEDS_REVIEW = "NEEDS_REVIEW"
    FAIL = "FAIL"
    INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True)
class Location:
    """Where the evidence is. ``path`` is relative to the record folder (PR mode: the repo).

    For code, lines are lines of the *unwrapped* source; ``wrapper`` then names the wrapper
    the submitted file uses, so a reader knows to look at ``pgolf-audit unwrap`` output.
    """

    path: str
    start_line: int | None = None
    end_line: int | None = None
    wrapper: str | None = None
    json_path: str | None = None

    def display(self) -> str:
        text = self.path
        if self.start_line:
            text += f":{self.start_line}"
            if self.end_line and self.end_line != self.start_line:
                text += f"-{self.end_line}"
        if self.json_path:
            text += f" ({self.json_path})"
        return text


@dataclass
class Evidence:
    excerpt: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    related: list[Location] = field(default_factory=list)


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    confidence: Confidence
    category: Category
    message: str
    location: Location | None = None
    evidence: Evidence = field(default_factory=Evidence)
    references: list[str] = field(default_factory=list)
    # The problem this finding is an occurrence of: the fingerprint of the most decisive finding
    # with the same code and severity (once per seed, per log, per file: one problem). Set by
    # ``group_problems``; reviews show each problem once, listing the places it covers.
    problem: str | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across runs and line shifts: code, file and normalised excerpt or message."""
        basis = self.evidence.excerpt or self.message
        normalised = " ".join(basis.split())
        path = self.location.path if self.location else ""
        return hashlib.sha256(f"{self.code}|{path}|{normalised}".encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        data = {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "confidence": self.confidence.value,
            "category": self.category.value,
            "message": self.message,
            "location": asdict(self.location) if self.location else None,
            "evidence": {
                "excerpt": self.evidence.excerpt,
                "values": self.evidence.values,
                "related": [asdict(r) for r in self.evidence.related],
            },
            "references": list(self.references),
            "fingerprint": self.fingerprint,
        }
        if self.problem:
            data["problem"] = self.problem
        return data


@dataclass
class CheckOutcome:
    code: str
    name: str
    status: CheckStatus
    reason: str = ""
    duration_ms: float = 0.0
    findings: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 2),
            "findings": self.findings,
        }


# Decisiveness: what decides a maintainer's verdict first. An over-cap artifact is the plainest
# rejection, then an illegal evaluation, a time limit, the metric and byte accounting, claims the
# logs contradict, significance, and packaging. Rerun measurements sit with time; the auditor's
# own gaps (META) come last among errors, because a proven problem outranks an unchecked one.
DECISIVENESS = {
    Category.ARTIFACT: 0, Category.LEGALITY: 1, Category.TIME: 2, Category.RERUN: 3, Category.METRIC: 4,
    Category.CONSISTENCY: 5, Category.STATISTICS: 6, Category.PACKAGING: 7, Category.META: 8,
}
CONFIDENCE_RANK = {Confidence.HIGH: 0, Confidence.MEDIUM: 1, Confidence.LOW: 2}


def decisive_order(f: Finding) -> tuple:
    """Sort key: severity, decisiveness of the category, confidence, code, place."""
    return (-f.severity.rank, DECISIVENESS.get(f.category, 9), CONFIDENCE_RANK.get(f.confidence, 3),
            f.code, f.location.display() if f.location else "")


def group_problems(findings: list[Finding]) -> list[Finding]:
    """One problem per code and severity: every occurrence (once per seed, per log, per file)
    points at the most decisive of them through ``problem``. Input order is kept (sort first)."""
    head: dict[tuple, str] = {}
    for f in findings:
        f.problem = head.setdefault((f.code, f.severity), f.fingerprint)
    return findings


def compute_verdict(findings: list[Finding], checks: list[CheckOutcome]) -> Verdict:
    """FAIL beats INCOMPLETE beats NEEDS_REVIEW beats PASS.

    A proven disqualifying problem is reported as FAIL even when other checks could not
    finish; when nothing disqualifying was found but something could not be checked, the
    folder is INCOMPLETE, never PASS (fail closed).
    """
    if any(f.severity is Severity.ERROR and f.category is not Category.META for f in findings):
        return Verdict.FAIL
    incomplete = any(f.severity is Severity.ERROR and f.category is Category.META for f in findings) or any(
        c.status in (CheckStatus.INCOMPLETE, CheckStatus.ERROR) for c in checks
    )
    if incomplete:
        return Verdict.INCOMPLETE
    if any(f.severity is Severity.WARNING for f in findings):
        return Verdict.NEEDS_REVIEW
    return Verdict.PASS


@dataclass
class FolderResult:
    """The audit of one record folder."""

    path: str                      # as the user named it (display)
    name: str                      # folder name
    track: str | None
    track_source: str              # "path", "--track", "submission.json", "default"
    ruleset: str
    verdict: Verdict = Verdict.INCOMPLETE
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)   # per-run table rows
    stats: dict[str, Any] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)        # entry, wrapper, counted files
    limits: dict[str, Any] = field(default_factory=dict)
    not_checked: list[str] = field(default_factory=list)
    rerun: RerunResult | None = None

    def finalise(self) -> None:
        self.findings = group_problems(sorted(self.findings, key=decisive_order))
        self.verdict = compute_verdict(self.findings, self.checks)

    def counts(self) -> dict[str, int]:
        return {
            "error": sum(f.severity is Severity.ERROR for f in self.findings),
            "warning": sum(f.severity is Severity.WARNING for f in self.findings),
            "info": sum(f.severity is Severity.INFO for f in self.findings),
            "checks_run": sum(c.status in (CheckStatus.PASS, CheckStatus.FAIL) for c in self.checks),
            "checks_skipped": sum(c.status is CheckStatus.SKIP for c in self.checks),
            "checks_incomplete": sum(c.status in (CheckStatus.INCOMPLETE, CheckStatus.ERROR) for c in self.checks),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "track": self.track,
            "track_source": self.track_source,
            "ruleset": self.ruleset,
            "verdict": self.verdict.value,
            "summary": self.counts(),
            "claims": self.claims,
            "measured": self.measured,
            "runs": self.runs,
            "stats": self.stats,
            "code": self.code,
            "limits": self.limits,
            "findings": [f.to_json() for f in self.findings],
            "checks": [c.to_json() for c in self.checks],
            "not_checked": self.not_checked,
            "rerun": self.rerun.to_json() if self.rerun is not None else None,
        }


VERDICT_ORDER = [Verdict.PASS, Verdict.NEEDS_REVIEW, Verdict.INCOMPLETE, Verdict.FAIL]


# ---- pull-request section (``pgolf-audit pr``) ------------------------------------------

@dataclass
class PrSection:
    """What a pull request changes and the PR-level findings about its shape.

    ``changes`` are the diff between the merge base and the head as
    ``{"status", "path", "old_path"}`` rows (status letters as ``git diff --name-status``
    gives them); ``shape`` is one sentence describing the diff; ``findings`` and ``checks``
    come from the PR-shape rules (PG61x). Paths are relative to the repository root.
    """

    base: str                      # the revisions as the user named them
    head: str
    base_sha: str
    head_sha: str
    merge_base: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    added_folders: list[str] = field(default_factory=list)
    audited_folders: list[str] = field(default_factory=list)
    shape: str = ""
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    not_exported: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}

    @property
    def verdict(self) -> Verdict:
        return compute_verdict(self.findings, self.checks)

    def finalise(self) -> None:
        self.findings = group_problems(sorted(self.findings, key=decisive_order))
        self.checks.sort(key=lambda c: c.code)

    def counts(self) -> dict[str, int]:
        return {
            "error": sum(f.severity is Severity.ERROR for f in self.findings),
            "warning": sum(f.severity is Severity.WARNING for f in self.findings),
            "info": sum(f.severity is Severity.INFO for f in self.findings),
        }

    def to_json(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for change in self.changes:
            by_status[change["status"]] = by_status.get(change["status"], 0) + 1
        return {
            "base": self.base,
            "head": self.head,
            "base_sha": self.base_sha,
            "head_sha": self.head_sha,
            "merge_base": self.merge_base,
            "verdict": self.verdict.value,
            "shape": self.shape,
            "summary": self.counts(),
            "changes_by_status": by_status,
            "changes": self.changes,
            "added_folders": self.added_folders,
            "audited_folders": self.audited_folders,
            "not_exported": self.not_exported,
            "findings": [f.to_json() for f in self.findings],
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class AuditReport:
    """One or more folder results plus what produced them (and, for a pull request, its shape)."""

    tool: dict[str, Any]
    results: list[FolderResult]
    errors: list[dict[str, str]] = field(default_factory=list)  # paths that could not be audited at all
    pr: PrSection | None = None

    @property
    def verdict(self) -> Verdict:
        if self.errors:
            worst = Verdict.INCOMPLETE
        else:
            worst = Verdict.PASS
        verdicts = [r.verdict for r in self.results] + ([self.pr.verdict] if self.pr else [])
        for v in verdicts:
            if VERDICT_ORDER.index(v) > VERDICT_ORDER.index(worst):
                worst = v
        return worst

    def exit_code(self, fail_on: str = "error") -> int:
        """The exit policy of ``check``, ``pr`` and ``rerun``: 2 when anything could not be
        audited (fail closed, even beside a FAIL) or nothing was audited at all, else 1 for
        findings at or above ``fail_on`` ("error" or "warning"), else 0. A pull request that
        adds no folder is not "nothing audited": PG615 reports it as a finding."""
        verdicts = {r.verdict for r in self.results}
        if self.pr is not None:
            verdicts.add(self.pr.verdict)
        if self.errors or Verdict.INCOMPLETE in verdicts or not verdicts:
            return EXIT_INCOMPLETE
        if Verdict.FAIL in verdicts:
            return EXIT_FINDINGS
        if fail_on == "warning" and Verdict.NEEDS_REVIEW in verdicts:
            return EXIT_FINDINGS
        return EXIT_OK

    def summary(self) -> dict[str, Any]:
        per_verdict = {v.value: 0 for v in Verdict}
        for r in self.results:
            per_verdict[r.verdict.value] += 1
        totals = {"error": 0, "warning": 0, "info": 0}
        counted = [r.counts() for r in self.results] + ([self.pr.counts()] if self.pr else [])
        for c in counted:
            for k in totals:
                totals[k] += c[k]
        return {"folders": len(self.results), "verdicts": per_verdict, "findings": totals,
                "unreadable_paths": len(self.errors)}

    def to_json(self) -> dict[str, Any]:
        data = {
            "schema_version": SCHEMA_VERSION,
            "tool": self.tool,
            "verdict": self.verdict.value,
            "summary": self.summary(),
            "results": [r.to_json() for r in self.results],
            "errors": self.errors,
        }
        if self.pr is not None:
            data["pr"] = self.pr.to_json()
        return data

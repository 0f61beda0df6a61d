"""Running the audit: select rules, run them against each folder, assemble the results.

This is the programmatic entry point (the CLI is a thin layer over it):

    report = audit_paths([Path("records/track_10min_16mb")], AuditOptions())
    print(render(report, "markdown"))
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from . import __version__, registry
from .context import AuditContext, AuditOptions
from .folder import FolderError, RecordFolder, discover_record_folders
from .model import (
    AuditReport, Category, CheckOutcome, CheckStatus, Confidence, Evidence, Finding, FolderResult, Location, Severity,
)
from .rulebase import AstRule, Check, IncompleteCheck, MetaRule, PrRule, Rule, SkipCheck
from .summary import fill_tables

CRASH_CODE, CRASH_NAME = "PG900", "rule-crashed"


def tool_info() -> dict[str, Any]:
    return {"name": "pgolf-audit", "version": __version__, "rules_digest": registry.rules_digest()}


def selected_rules(options: AuditOptions) -> list[tuple[type[Rule], bool, str]]:
    """Every registered rule with whether it runs and, if not, why."""
    out = []
    for cls in registry.all_rules():
        ok, reason = registry.is_selected(cls, options.select, options.ignore, options.preview)
        out.append((cls, ok, reason))
    return out


def _crash_finding(cls: type[Rule], exc: BaseException) -> Finding:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return Finding(
        code=CRASH_CODE, name=CRASH_NAME, severity=Severity.ERROR, confidence=Confidence.HIGH,
        category=Category.META,
        message=f"{cls.CODE} {cls.NAME} crashed ({type(exc).__name__}: {exc}){where}; its check did not run, so this folder cannot pass",
        evidence=Evidence(values={"rule": cls.CODE, "exception": type(exc).__name__}),
    )


def run_check(cls: type[Check], ctx: AuditContext) -> tuple[list[Finding], CheckOutcome]:
    start = time.perf_counter()
    findings: list[Finding] = []
    try:
        findings = list(cls().run(ctx))
        live = [f for f in findings if f.severity is not Severity.INFO]
        status = CheckStatus.FAIL if live else CheckStatus.PASS
        reason = ""
    except SkipCheck as exc:
        status, reason = CheckStatus.SKIP, str(exc)
    except IncompleteCheck as exc:
        status, reason = CheckStatus.INCOMPLETE, str(exc)
    except Exception as exc:  # a crashing rule must never crash the audit (fail closed)
        findings = [_crash_finding(cls, exc)]
        status, reason = CheckStatus.ERROR, f"crashed: {type(exc).__name__}: {exc}"
    outcome = CheckOutcome(cls.CODE, cls.NAME, status, reason, (time.perf_counter() - start) * 1000, len(findings))
    return findings, outcome


def audit_folder(path: Path, options: AuditOptions, display_path: str | None = None) -> FolderResult:
    folder = RecordFolder.open(path)
    ctx = AuditContext(folder, options, display_path or str(path))
    result = FolderResult(
        path=display_path or str(path), name=folder.name, track=ctx.track, track_source=ctx.track_source,
        ruleset=ctx.ruleset.id,
    )
    ast_rules: list[type[AstRule]] = []
    for cls, selected, reason in selected_rules(options):
        if issubclass(cls, (MetaRule, PrRule)):  # PR-shape rules run in `pgolf-audit pr`, on the diff
            continue
        if not selected:
            result.checks.append(CheckOutcome(cls.CODE, cls.NAME, CheckStatus.SKIP, reason))
            continue
        if not cls.applies_to(ctx.limits_track):
            result.checks.append(CheckOutcome(cls.CODE, cls.NAME, CheckStatus.SKIP, f"does not apply to {ctx.limits_track}"))
            continue
        if issubclass(cls, AstRule):
            ast_rules.append(cls)
            continue
        findings, outcome = run_check(cls, ctx)
        result.findings.extend(findings)
        result.checks.append(outcome)
    if ast_rules:
        from .engine import run_ast_rules  # the libcst engine: one parse, one traversal for all rules

        for findings, outcome in run_ast_rules(ctx, ast_rules):
            result.findings.extend(findings)
            result.checks.append(outcome)
    result.checks.sort(key=lambda c: c.code)
    fill_tables(ctx, result)
    # --- rerun: the reproduction measured from outside joins the result as its own section.
    result.rerun = ctx.rerun
    result.finalise()
    return result


def _audit_one(args: tuple[str, AuditOptions, str]) -> tuple[str, FolderResult | None, str | None]:
    path, options, display = args
    try:
        return path, audit_folder(Path(path), options, display), None
    except FolderError as exc:
        return path, None, str(exc)


def expand_paths(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[dict[str, str]]]:
    folders: list[tuple[Path, str]] = []
    errors: list[dict[str, str]] = []
    for p in paths:
        if not p.exists():
            errors.append({"path": str(p), "error": "no such file or directory"})
            continue
        if not p.is_dir():
            errors.append({"path": str(p), "error": "not a directory (give a record folder or a folder of record folders)"})
            continue
        found = discover_record_folders(p)
        if not found:
            errors.append({"path": str(p), "error": "no record folder found (no README.md, submission*.json, train*.py or log files)"})
        for f in found:
            display = str(p) if f == p else str(p / f.relative_to(p))
            folders.append((f, display))
    return folders, errors


def audit_paths(paths: list[Path], options: AuditOptions) -> AuditReport:
    folders, errors = expand_paths(paths)
    jobs = max(1, min(options.jobs or os.cpu_count() or 1, len(folders)))
    work = [(str(f), options, display) for f, display in folders]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(_audit_one, work, chunksize=1))
    else:
        outcomes = [_audit_one(w) for w in work]
    results = []
    for path, result, error in outcomes:
        if result is None:
            errors.append({"path": path, "error": error or "could not be audited"})
        else:
            results.append(result)
    return AuditReport(tool=tool_info(), results=results, errors=errors)


__all__ = ["AuditOptions", "audit_folder", "audit_paths", "tool_info", "run_check", "Location"]

"""Every rule's VALID and INVALID examples, run as tests (one test per case).

A FolderCase is the bundled example record with the case's edits applied; the audit runs
with only that rule selected. An INVALID case must produce the rule's code (at the expected
severity and with the expected words); a VALID case must not produce it at all. A CodeCase
(AST rules) is a minimal record folder whose train_gpt.py is the snippet (wrapped when the
case says so) with optional helper files and logs; an INVALID case must also be reported at
its expected line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgolf_audit import registry
from pgolf_audit.audit import audit_folder
from pgolf_audit.cases import build_case_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.cases import build_code_case_folder
from pgolf_audit.rulebase import CodeCase, FolderCase, PrCase, RECORD_TRACK


def cases_of(case_type: type):
    """One test parameter per example of this type in every rule's VALID and INVALID."""
    for cls in registry.all_rules():
        for kind in ("VALID", "INVALID"):
            for i, case in enumerate(getattr(cls, kind), 1):
                if isinstance(case, case_type):
                    yield pytest.param(cls, kind, case, id=f"{cls.CODE}-{kind}-{i}")


def run_folder_case(cls, case: FolderCase, tmp_path: Path):
    options = dict(case.options)
    track = options.get("track") or RECORD_TRACK
    folder = build_case_folder(case, tmp_path / "candidate", track=track)
    if case.reference is not None:
        options["against"] = build_case_folder(case.reference, tmp_path / "reference")
    result = audit_folder(folder, AuditOptions(select=[cls.CODE], **options))
    return [f for f in result.findings if f.code == cls.CODE], result


@pytest.mark.parametrize("cls,kind,case", list(cases_of(FolderCase)))
def test_folder_case(cls, kind, case, tmp_path):
    findings, result = run_folder_case(cls, case, tmp_path)
    crashed = [f for f in result.findings if f.code == "PG900"]
    assert not crashed, crashed[0].message
    shown = "\n".join(f"  {f.severity.value}: {f.message}" for f in findings) or "  (none)"
    if kind == "VALID":
        assert not findings, f"{case.description}: expected no {cls.CODE}, got:\n{shown}"
        return
    assert findings, f"{case.description}: expected {cls.CODE}, got none (checks: " \
                     f"{[(c.code, c.status.value, c.reason) for c in result.checks if c.code == cls.CODE]})"
    matching = [f for f in findings if case.severity is None or f.severity is case.severity]
    assert matching, f"{case.description}: expected {cls.CODE} at {case.severity.value}, got:\n{shown}"
    assert any(all(w in f.message for w in case.message_contains) for f in matching), (
        f"{case.description}: no {cls.CODE} message contains {case.message_contains}; got:\n{shown}"
    )


# ---- pull-request shape rules: each PrCase is a diff, no repository needed --------------------

@pytest.mark.parametrize("cls,kind,case", list(cases_of(PrCase)))
def test_pr_case(cls, kind, case):
    from pgolf_audit.pr import PullRequest, check_pull_request

    pr = PullRequest.from_case(case)
    produced, checks = check_pull_request(pr, rules=[cls])
    crashed = [f for f in produced if f.code == "PG900"]
    assert not crashed, crashed[0].message
    findings = [f for f in produced if f.code == cls.CODE]
    shown = "\n".join(f"  {f.severity.value}: {f.message}" for f in findings) or "  (none)"
    if kind == "VALID":
        assert not findings, f"{case.description}: expected no {cls.CODE}, got:\n{shown}"
        return
    assert findings, f"{case.description}: expected {cls.CODE}, got none"
    matching = [f for f in findings if case.severity is None or f.severity is case.severity]
    assert matching, f"{case.description}: expected {cls.CODE} at {case.severity.value}, got:\n{shown}"
    assert any(all(w in f.message for w in case.message_contains) for f in matching), (
        f"{case.description}: no {cls.CODE} message contains {case.message_contains}; got:\n{shown}"
    )
    assert all(f.location is not None for f in findings if case.changes), "PR findings point at a changed path"


# --------------------------------------------------------------------------- CodeCase (AST rules)

def run_code_case(cls, case: CodeCase, tmp_path: Path):
    folder = build_code_case_folder(case, tmp_path)
    result = audit_folder(folder, AuditOptions(select=[cls.CODE]))
    return [f for f in result.findings if f.code == cls.CODE], result


@pytest.mark.parametrize("cls,kind,case", list(cases_of(CodeCase)))
def test_code_case(cls, kind, case, tmp_path):
    findings, result = run_code_case(cls, case, tmp_path)
    crashed = [f for f in result.findings if f.code == "PG900"]
    assert not crashed, crashed[0].message
    outcome = [c for c in result.checks if c.code == cls.CODE]
    # an excerpt without a scoring pass leaves the order rules "not recognised" (never a pass)
    ran = outcome and (outcome[0].status.value in ("pass", "fail")
                       or outcome[0].reason.startswith("not recognised") and not findings)
    assert ran, f"{cls.CODE} did not run: {outcome}"

    def show(f):
        where = f.location.display() if f.location else "?"
        return f"  {f.severity.value} {where}: {f.message}"

    shown = "\n".join(show(f) for f in findings) or "  (none)"
    if kind == "VALID":
        assert not findings, f"{case.description}: expected no {cls.CODE}, got:\n{shown}"
        return
    assert findings, f"{case.description}: expected {cls.CODE}, got none"
    matching = [f for f in findings if case.severity is None or f.severity is case.severity]
    assert matching, f"{case.description}: expected {cls.CODE} at {case.severity.value}, got:\n{shown}"
    if case.line is not None:
        expected_file = case.file or "train_gpt.py"
        at_line = [f for f in matching if f.location and f.location.start_line == case.line
                   and f.location.path == expected_file]
        assert at_line, f"{case.description}: expected {cls.CODE} at {expected_file}:{case.line}, got:\n{shown}"
        matching = at_line
    assert any(all(w in f.message for w in case.message_contains) for f in matching), (
        f"{case.description}: no {cls.CODE} message contains {case.message_contains}; got:\n{shown}"
    )

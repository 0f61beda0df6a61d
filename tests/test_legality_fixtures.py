"""Annotated legality fixtures: realistic scripts whose comments say, line by line, what the
PG1xx rules must report (`# expect:`), must not report (`# ok:`) and do not decide yet
(`# todo:`, `# todo-ok:`). A failure lists every differing line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgolf_audit import registry
from pgolf_audit.audit import audit_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.engine.fixtures import build_fixture_folder, compare, load_fixture, parse_annotations

FIXTURES = Path(__file__).parent / "fixtures" / "legality"
FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))
# the legality rules that read code: a fixture is a script, so rules that read the folder's
# README or shell scripts (PG111) are tested by their own cases, not here
LEGALITY_CODES = {cls.CODE for cls in registry.all_rules() if cls.CODE.startswith("PG1") and cls.KIND == "ast"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture(path, tmp_path):
    fixture = load_fixture(path)
    folder = build_fixture_folder(fixture, tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG1"]))
    crashed = [f.message for f in result.findings if f.code == "PG900"]
    assert not crashed, crashed
    # a fixture without a scoring pass (a model-code excerpt) leaves the order rules
    # "not recognised"; anything else that did not run is a fault
    not_run = [(c.code, c.status.value, c.reason) for c in result.checks
               if c.code in LEGALITY_CODES and c.status.value not in ("pass", "fail")
               and not c.reason.startswith("not recognised")]
    assert not not_run, not_run
    comparison = compare(fixture, result.findings, LEGALITY_CODES)
    differences = comparison.differences()
    assert not differences, f"{path.name}:\n  " + "\n  ".join(differences)


def test_every_legality_rule_has_fixture_lines():
    expected: dict[str, int] = {code: 0 for code in LEGALITY_CODES}
    allowed: dict[str, int] = {code: 0 for code in LEGALITY_CODES}
    for path in FIXTURE_FILES:
        fixture = load_fixture(path)
        for e in fixture.expectations:
            if e.kind == "expect":
                expected[e.code] = expected.get(e.code, 0) + 1
            elif e.kind == "ok":
                allowed[e.code] = allowed.get(e.code, 0) + 1
    assert all(expected[c] for c in LEGALITY_CODES), {c: n for c, n in expected.items() if not n}
    assert all(allowed[c] for c in LEGALITY_CODES), {c: n for c, n in allowed.items() if not n}


def test_annotations_apply_to_the_next_code_line():
    text = "# expect: PG101, PG103(info)\n# a comment\n\nx = 1\n# ok: PG104\ny = 2\n"
    marks = parse_annotations(text, "train_gpt.py")
    assert [(m.kind, m.code, m.line, m.severity and m.severity.value) for m in marks] == [
        ("expect", "PG101", 4, None), ("expect", "PG103", 4, "info"), ("ok", "PG104", 6, None)]


def test_wrapped_fixtures_are_really_wrapped(tmp_path):
    wrapped = [p for p in FIXTURE_FILES if load_fixture(p).wrap]
    assert len(wrapped) >= 2
    fixture = load_fixture(wrapped[0])
    folder = build_fixture_folder(fixture, tmp_path)
    text = (folder / "train_gpt.py").read_text()
    assert "exec(" in text and len(text.splitlines()) < 5

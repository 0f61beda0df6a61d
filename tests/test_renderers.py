"""Renderers: the JSON document validates against the published schema; Markdown and text are
rendered from it, escape submitter text, and match a golden review of the bundled example."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pgolf_audit.audit import audit_paths
from pgolf_audit.cases import build_case_folder, example_record
from pgolf_audit.context import AuditOptions
from pgolf_audit.render import document, md_code, md_escape, md_fence, render
from pgolf_audit.rulebase import FolderCase

GOLDEN = Path(__file__).parent / "golden"
SCHEMA = json.loads(resources.files("pgolf_audit.reports").joinpath("audit.schema.json").read_text())


def normalise(text: str) -> str:
    """Drop what legitimately varies between runs and machines: version, digest, paths, timings."""
    text = re.sub(r"pgolf-audit \d+\.\d+\.\d+\S*", "pgolf-audit X", text)
    text = re.sub(r"sha256:[0-9a-f]+", "sha256:X", text)
    return text.replace(str(example_record()), "<example>")


@pytest.fixture(scope="module")
def example_report():
    return audit_paths([example_record()], AuditOptions())


def test_single_folder_json_validates(example_report):
    doc = document(example_report)
    jsonschema.validate(doc, SCHEMA)
    assert "results" not in doc and doc["verdict"] == "PASS"


def test_multi_folder_json_validates(tmp_path):
    bad = build_case_folder(FolderCase("bad", json={"val_bpb": 1.05}), tmp_path)
    report = audit_paths([example_record(), bad, tmp_path / "missing"], AuditOptions(jobs=1))
    doc = json.loads(render(report, "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["folders"] == 2 and doc["summary"]["unreadable_paths"] == 1
    assert doc["verdict"] == "FAIL"


def test_corpus_folder_json_validates(corpus_root):
    folder = corpus_root / "track_10min_16mb" / "2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence"
    doc = json.loads(render(audit_paths([folder], AuditOptions()), "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == "FAIL"


def test_markdown_review_matches_golden(example_report):
    current = normalise(render(example_report, "markdown"))
    current = re.sub(r"\| (pass|fail|skip) \| (\d+) \|", r"| \1 | \2 |", current)
    golden = GOLDEN / "example_review.md"
    if os.environ.get("PGOLF_UPDATE_SNAPSHOTS") or not golden.exists():
        golden.write_text(current)
    assert current == golden.read_text(), "review changed; rerun with PGOLF_UPDATE_SNAPSHOTS=1 and review the diff"


def test_markdown_review_of_a_failing_folder_shows_evidence(tmp_path):
    folder = build_case_folder(FolderCase("over cap", edits={"train_seed42.log": [
        (r"Total submission size int6\+lzma: \d+", "Total submission size int6+lzma: 16000123")]}), tmp_path)
    md = render(audit_paths([folder], AuditOptions()), "markdown")
    assert "❌ FAIL" in md
    assert "**PG201 artifact-over-limit**" in md
    assert "`train_seed42.log:" in md
    assert "Total submission size int6+lzma: 16000123 bytes" in md  # the excerpt
    assert "16,000,123 ❌" in md  # the claimed-vs-measured table marks the over-cap seed


@pytest.mark.parametrize("hostile", [
    "<img src=x onerror=alert(1)>", "`code` | pipe", "[click](javascript:alert(1))", "line1\nline2", "**bold** _it_",
])
def test_submitter_text_is_escaped(hostile):
    escaped = md_escape(hostile)
    assert "<img" not in escaped and "](" not in escaped.replace("\\]", "")
    assert "\n" not in escaped
    code = md_code(hostile)
    assert code.startswith("`") and "\n" not in code
    fence = md_fence("```\n" + hostile)
    assert fence.startswith("````")


def test_hostile_folder_name_in_review(tmp_path):
    folder = build_case_folder(FolderCase("hostile", folder_name="2026-04-20_<script>alert(1)</script>"), tmp_path)
    md = render(audit_paths([folder], AuditOptions()), "markdown")
    assert "<script>" not in md.replace("`2026-04-20_<script>alert(1)</script>`", "")

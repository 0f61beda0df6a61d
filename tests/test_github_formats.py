"""`--format github` workflow annotations, the action's outputs helper, and hostile names
through every format on a real pull request."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from pgolf_audit.model import AuditReport, Category, Confidence, Finding, FolderResult, Location, Severity
from pgolf_audit.audit import tool_info
from pgolf_audit.render import document, render
from pgolf_audit.render.github import action_outputs, escape_data, escape_property, render_github

TOOL = tool_info()  # with the rule table the SARIF renderer reads


def make_folder(path: str, *findings: Finding) -> FolderResult:
    result = FolderResult(path=path, name=path.rsplit("/", 1)[-1], track="track_10min_16mb", track_source="path",
                          ruleset="2026-04")
    result.findings.extend(findings)
    result.finalise()
    return result


def test_escaping_rules():
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_one_annotation_per_finding():
    findings = [
        Finding("PG201", "artifact-over-limit", Severity.ERROR, Confidence.HIGH, Category.ARTIFACT,
                "artifact 16,004,112 bytes", location=Location("train_seed42.log", 146, 148)),
        Finding("PG502", "improvement-not-significant", Severity.WARNING, Confidence.MEDIUM, Category.STATISTICS,
                "p = 0.03"),
        Finding("PG605", "wrapped-code", Severity.INFO, Confidence.HIGH, Category.PACKAGING, "wrapped",
                location=Location("train_gpt.py", 40, wrapper="lzma + base85 wrapper")),
    ]
    doc = document(AuditReport(tool=TOOL, results=[make_folder("records/track_10min_16mb/X", *findings)]))
    lines = render_github(doc).splitlines()
    assert lines == [
        "::error file=records/track_10min_16mb/X/train_seed42.log,line=146,endLine=148,"
        "title=PG201 artifact-over-limit::artifact 16,004,112 bytes",
        "::warning title=PG502 improvement-not-significant::records/track_10min_16mb/X: p = 0.03",
        "::notice file=records/track_10min_16mb/X/train_gpt.py,title=PG605 wrapped-code::wrapped "
        "(line 40 of the unwrapped source; train_gpt.py is a lzma + base85 wrapper)",
    ]


def test_hostile_text_cannot_start_a_second_command():
    evil = "x\n::set-output name=verdict::PASS\r\n%0A"
    doc = document(AuditReport(tool=TOOL, results=[make_folder(
        "records/track_10min_16mb/a,b:c", Finding("PG603", "bad-folder-name", Severity.WARNING, Confidence.HIGH,
                                                  Category.PACKAGING, evil, location=Location("R,E:A\nDME.md")))]))
    out = render_github(doc)
    assert out.count("\n") == 1 and out.startswith("::warning ")
    assert "file=records/track_10min_16mb/a%2Cb%3Ac/R%2CE%3AA%0ADME.md," in out
    assert out.endswith("::x%0A::set-output name=verdict::PASS%0D%0A%250A\n")


def test_action_outputs_for_both_document_shapes():
    one = document(AuditReport(tool=TOOL, results=[make_folder("a", Finding(
        "PG201", "artifact-over-limit", Severity.ERROR, Confidence.HIGH, Category.ARTIFACT, "m"))]))
    assert action_outputs(one) == {"verdict": "FAIL", "error-count": "1", "warning-count": "0", "info-count": "0"}
    two = document(AuditReport(tool=TOOL, results=[make_folder("a"), make_folder("b")]))
    assert action_outputs(two)["verdict"] == "PASS" and action_outputs(two)["error-count"] == "0"


def test_summary_outputs_command(tmp_path, monkeypatch):
    from pgolf_audit.cli import main as cli_main

    doc = document(AuditReport(tool=TOOL, results=[make_folder("a")]))
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    review = tmp_path / "review.md"
    review.write_text("<!-- pgolf-audit:review -->\n# ok\n" + "x" * 2_000_000 + "\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = CliRunner().invoke(cli_main, ["summary-outputs", str(report), "--review", str(review)])
    assert result.exit_code == 0, result.output
    assert "verdict=PASS\nerror-count=0\nwarning-count=0\ninfo-count=0\n" in result.output
    written = summary.read_text()
    assert len(written.encode()) < 1024 * 1024 and "Trimmed to fit the 1 MiB job summary limit" in written
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert CliRunner().invoke(cli_main, ["summary-outputs", str(bad)]).exit_code == 2


def strip_code_spans(markdown: str) -> str:
    """The text outside GFM code spans (inside one, HTML and link syntax are literal)."""
    return re.sub(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", markdown)


def assert_tables_keep_their_columns(markdown: str) -> None:
    """Every GFM table row has as many cells as its header: no ``|`` from a name split a cell."""
    lines = markdown.splitlines()
    columns = None
    checked = 0
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            columns = None
            continue
        cells = len(re.split(r"(?<!\\)\|", line.strip())) - 2
        if i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            columns = cells
        elif columns is not None and not line.startswith("|---"):
            assert cells == columns, f"table row has {cells} cells, header {columns}: {line}"
            checked += 1
    assert checked


# ---- hostile names on a real pull request, through markdown, SARIF and annotations -------------------

HOSTILE_FOLDER = "2026-04-20_<img src=x onerror=alert(1)>`x`|](javascript:alert(1))"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_hostile_names_in_every_format(tmp_path):
    from test_pr_mode import TRACK, copy_example, git, make_pr
    from test_sarif import check_sarif_structure

    from pgolf_audit.context import AuditOptions
    from pgolf_audit.pr import audit_pull_request

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# base\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")

    def edit(r):
        copy_example(r, f"{TRACK}/{HOSTILE_FOLDER}")
        (r / "<script>alert(1)<|script>.md").write_text("x\n")
        (r / "line\nbreak.md").write_text("x\n")

    make_pr(repo, "hostile", edit)
    report = audit_pull_request(repo, "main", "hostile", AuditOptions())
    assert {f.code for f in report.pr.findings} == {"PG610"}
    doc = document(report)

    markdown = render(doc, "markdown")
    outside_code = strip_code_spans(markdown)
    assert re.search(r"(?<!\\)<(img|script)", outside_code) is None, "raw HTML from a file name reached the review"
    assert re.search(r"(?<!\\)\]\(javascript:", outside_code) is None, "a link could form around a name"
    assert "\n::" not in markdown and "line break.md" in markdown  # the newline in a name became a space
    assert_tables_keep_their_columns(markdown)

    sarif = json.loads(render(doc, "sarif"))
    check_sarif_structure(sarif)

    annotations = render(doc, "github")
    assert all(line.startswith("::") for line in annotations.splitlines())
    assert "line%0Abreak.md" in annotations

"""The command line: default example, formats, exit codes, selection, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgolf_audit import registry
from pgolf_audit.cases import build_case_folder
from pgolf_audit.cli import main
from pgolf_audit.render import MARKER
from pgolf_audit.rulebase import Check, FolderCase


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_no_path_audits_the_bundled_example_and_passes():
    result = invoke()
    assert result.exit_code == 0, result.output
    assert result.output.startswith(MARKER)
    assert "PASS" in result.output
    assert "Claimed vs measured" in result.output
    assert "2026-04-20_Example" in result.output


def test_json_is_canonical_and_has_the_documented_fields():
    result = invoke("--format", "json")
    doc = json.loads(result.output)
    assert doc["schema_version"] == "1"
    assert doc["verdict"] == "PASS"
    for key in ("tool", "findings", "checks", "claims", "measured", "runs", "limits", "summary"):
        assert key in doc
    assert doc["tool"]["name"] == "pgolf-audit"
    assert {c["status"] for c in doc["checks"]} <= {"pass", "fail", "skip", "incomplete", "error"}
    assert all(c["reason"] for c in doc["checks"] if c["status"] == "skip"), "a skip always says why"
    assert len(doc["runs"]) == 3
    assert doc["measured"]["artifact_bytes_max"] == doc["claims"]["artifact_bytes"]


def test_text_format_and_output_file(tmp_path):
    out = tmp_path / "review.txt"
    result = CliRunner().invoke(main, ["--format", "text", "--output", str(out)])
    assert result.exit_code == 0
    text = out.read_text()
    assert text.startswith("PASS")
    assert "report written to" in result.stderr


def _without_timings(doc: dict) -> dict:
    return {**doc, "checks": [{k: v for k, v in c.items() if k != "duration_ms"} for c in doc["checks"]]}


def test_explicit_check_command_is_the_same_as_the_default():
    explicit = json.loads(invoke("check", "--format", "json").output)
    implicit = json.loads(invoke("--format", "json").output)
    assert _without_timings(explicit) == _without_timings(implicit)


def _folder(tmp_path: Path, **case) -> Path:
    return build_case_folder(FolderCase("cli case", **case), tmp_path)


def test_exit_1_on_error_findings(tmp_path):
    folder = _folder(tmp_path, edits={"train_seed42.log": [(r"Total submission size int6\+lzma: \d+",
                                                             "Total submission size int6+lzma: 16000123")]})
    result = invoke(str(folder))
    assert result.exit_code == 1
    assert "FAIL" in result.output and "PG201" in result.output and "16,000,123" in result.output


def test_fail_on_warning(tmp_path):
    folder = _folder(tmp_path, json={"bytes_total": 15753341})  # the mean, not the max: PG203 warning
    assert invoke(str(folder)).exit_code == 0
    result = invoke(str(folder), "--fail-on", "warning")
    assert result.exit_code == 1
    assert "NEEDS_REVIEW" in result.output


def test_exit_2_when_incomplete(tmp_path):
    folder = _folder(tmp_path, edits={n: "garbage line\n" for n in
                                      ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")})
    result = invoke(str(folder), "--format", "json")
    assert result.exit_code in (1, 2)
    doc = json.loads(result.output)
    assert doc["verdict"] in ("INCOMPLETE", "FAIL")
    assert doc["verdict"] != "PASS"


@pytest.mark.parametrize("args,needle", [
    (["/no/such/folder"], "no such file"),
    (["--select", "PG0"], "no rule code starts with"),
    (["--ignore", "XYZ"], "no rule code starts with"),
    (["--ruleset", "1999-01-01"], "unknown ruleset"),
    (["--format", "yaml"], "Invalid value"),
    (["--against", "/no/such/ref"], "not a directory"),
])
def test_usage_errors_exit_2_without_traceback(args, needle):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_a_file_instead_of_a_folder_is_incomplete(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hi")
    result = invoke(str(f), "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.output)
    assert doc["errors"][0]["error"].startswith("not a directory")


def test_select_and_ignore(tmp_path):
    doc = json.loads(invoke("--format", "json", "--select", "PG2").output)
    ran = {c["code"] for c in doc["checks"] if c["status"] != "skip"}
    assert ran and all(c.startswith("PG2") for c in ran)
    doc = json.loads(invoke("--format", "json", "--ignore", "PG2,PG3").output)
    ran = {c["code"] for c in doc["checks"] if c["status"] != "skip"}
    assert ran and not any(c.startswith(("PG2", "PG3")) for c in ran)
    assert all(c["reason"] for c in doc["checks"] if c["code"].startswith("PG2"))


def test_several_folders_give_one_document_with_a_summary(tmp_path):
    good = _folder(tmp_path / "a")
    bad = _folder(tmp_path / "b", json={"val_bpb": 1.05})
    result = invoke(str(good), str(bad), "--format", "json", "--jobs", "2")
    doc = json.loads(result.output)
    assert result.exit_code == 1
    assert doc["summary"]["folders"] == 2
    assert [r["verdict"] for r in doc["results"]] == ["PASS", "FAIL"]
    sequential = json.loads(invoke(str(good), str(bad), "--format", "json", "--jobs", "1").output)
    strip = lambda d: [{k: v for k, v in r.items() if k != "checks"} for r in d["results"]]  # noqa: E731
    assert strip(sequential) == strip(doc)


def test_records_tree_is_discovered(tmp_path):
    _folder(tmp_path / "one")
    _folder(tmp_path / "two", folder_name="2026-04-21_Second")
    result = invoke(str(tmp_path), "--format", "text")
    assert result.exit_code == 0, result.output
    assert "2 folder(s): 2 PASS" in result.output
    assert "records/track_10min_16mb/2026-04-21_Second" in result.output


def test_a_crashing_rule_makes_the_audit_incomplete(monkeypatch):
    cls = registry.get("PG201")
    assert issubclass(cls, Check)

    def boom(self, ctx):
        raise RuntimeError("simulated rule bug")

    monkeypatch.setattr(cls, "run", boom)
    result = invoke("--format", "json")
    doc = json.loads(result.output)
    assert result.exit_code == 2
    assert doc["verdict"] == "INCOMPLETE"
    crash = [f for f in doc["findings"] if f["code"] == "PG900"]
    assert crash and "simulated rule bug" in crash[0]["message"]
    assert any(c["code"] == "PG201" and c["status"] == "error" for c in doc["checks"])


def test_rules_command_lists_every_rule():
    result = invoke("rules")
    lines = result.output.strip().splitlines()
    assert len(lines) == len(registry.all_rules())
    assert any(line.startswith("PG201  artifact-over-limit") for line in lines)
    data = json.loads(invoke("rules", "--format", "json").output)
    assert {"code", "name", "category", "severity", "summary", "docs"} <= set(data[0])
    docs = invoke("rules", "--code", "pg201").output
    assert "## PG201 artifact-over-limit" in docs and "### Why it breaks the rules" in docs
    assert CliRunner().invoke(main, ["rules", "--code", "PG999"]).exit_code == 2


def test_unwrap_command_prints_the_readable_source():
    from pgolf_audit.bundled import bundled_example

    result = invoke("unwrap", str(bundled_example() / "train_gpt.py"), "--layers")
    assert result.exit_code == 0
    assert "def eval_val_score_first_ttt(" in result.output
    assert "layer 1:" in result.stderr


def test_unwrap_command_reports_a_broken_wrapper(tmp_path):
    bad = tmp_path / "train_gpt.py"
    bad.write_text('import lzma,base64\nexec(lzma.decompress(base64.b85decode("abc")))\n')
    result = CliRunner().invoke(main, ["unwrap", str(bad)])
    assert result.exit_code == 2
    assert "cannot unwrap" in result.output
    assert "Traceback" not in result.output

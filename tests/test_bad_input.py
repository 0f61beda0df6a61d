"""Hostile and broken input: every case ends in a finding or a clear error, never a traceback,
and never in PASS when something could not be checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgolf_audit.audit import audit_folder, audit_paths
from pgolf_audit.cases import build_case_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.folder import MAX_FILE_BYTES, RecordFolder
from pgolf_audit.render import render
from pgolf_audit.rulebase import FolderCase

LOGS = ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")


def audit(tmp_path: Path, **case):
    folder = build_case_folder(FolderCase("bad input", **case), tmp_path)
    result = audit_folder(folder, AuditOptions())
    for fmt in ("markdown", "json", "text"):
        from pgolf_audit.model import AuditReport

        render(AuditReport(tool={"name": "pgolf-audit", "version": "t", "rules_digest": "x"}, results=[result]), fmt)
    assert not [f for f in result.findings if f.code == "PG900"], [f.message for f in result.findings if f.code == "PG900"]
    return result


def codes(result) -> set[str]:
    return {f.code for f in result.findings}


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02" * 100, b"\xff\xfe{\x00}\x00", b'{"val_bpb": ', b"null",
                                     b'{"val_bpb": "1.1"}', b'{"seeds": {"x": 3}, "seed_results": [1, 2]}'])
def test_broken_submission_json(tmp_path, content):
    result = audit(tmp_path, edits={"submission.json": content})
    assert result.verdict.value != "PASS"


@pytest.mark.parametrize("content", [b"", b"\x00" * 5000, b"\xff\xfe\xfd" * 1000, b"x" * 3_000_000,
                                     "step:1/2 val_loss:nan val_bpb:inf\n".encode()])
def test_broken_logs(tmp_path, content):
    result = audit(tmp_path, edits={n: content for n in LOGS})
    assert result.verdict.value in ("INCOMPLETE", "FAIL")
    assert "PG901" in codes(result) or "PG601" in codes(result)


def test_one_unreadable_log_among_good_ones_is_named(tmp_path):
    result = audit(tmp_path, edits={"train_seed42.log": b"\x00\x01 binary \xff" * 50})
    named = [f for f in result.findings if f.location and f.location.path == "train_seed42.log"]
    assert named


def test_invalid_utf8_in_a_log_is_reported_and_the_log_still_parsed(tmp_path):
    result = audit(tmp_path, edits={"train_seed42.log": lambda t: t.replace("Running PyTorch", "Running PyTorch \udcff").encode("utf-8", "surrogateescape")})
    assert any(f.code == "PG604" and "UTF-8" in f.message for f in result.findings)
    assert any(r["seed"] == 42 and r["val_bpb"] for r in result.runs)


def test_symlink_leaving_the_folder_is_not_followed(tmp_path):
    secret = tmp_path / "outside.log"
    secret.write_text("step:1/1 val_loss:1.0 val_bpb:0.5\n")
    folder = build_case_folder(FolderCase("symlink"), tmp_path / "x")
    os.symlink(secret, folder / "train_seed9.log")
    os.symlink("/etc", folder / "etc_link")
    listing = RecordFolder.open(folder)
    assert "train_seed9.log" not in listing.files
    assert any("outside the folder" in p for _, p in listing.problems)
    result = audit_folder(folder, AuditOptions())
    assert any(f.code == "PG604" and "train_seed9.log" in f.message for f in result.findings)
    assert all(r["log"] != "train_seed9.log" for r in result.runs)


def test_symlink_inside_the_folder_is_read(tmp_path):
    folder = build_case_folder(FolderCase("inner link"), tmp_path)
    (folder / "logs").mkdir()
    os.symlink(folder / "train_seed42.log", folder / "logs" / "seed42_link.log")
    listing = RecordFolder.open(folder)
    assert listing.files["logs/seed42_link.log"].via_symlink


def test_huge_file_is_not_read(tmp_path):
    folder = build_case_folder(FolderCase("huge"), tmp_path)
    with open(folder / "train_seed7.log", "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no real disk use
    result = audit_folder(folder, AuditOptions())
    assert any("reading limit" in f.message for f in result.findings)


def test_special_file_is_skipped(tmp_path):
    folder = build_case_folder(FolderCase("fifo"), tmp_path)
    os.mkfifo(folder / "pipe.log")
    result = audit_folder(folder, AuditOptions())  # must not block reading the FIFO
    assert any("special file" in f.message for f in result.findings)


def test_unreadable_file(tmp_path, monkeypatch):
    folder = build_case_folder(FolderCase("unreadable"), tmp_path)
    real_open = open

    def fake_open(path, *args, **kwargs):
        if str(path).endswith("train_seed1337.log"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    result = audit_folder(folder, AuditOptions())
    assert any("train_seed1337.log" in f.message and "Permission denied" in f.message for f in result.findings)
    assert result.verdict.value != "PASS"


def test_empty_folder_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    report = audit_paths([tmp_path / "empty"], AuditOptions())
    assert report.errors and "no record folder" in report.errors[0]["error"]
    assert report.verdict.value == "INCOMPLETE"


def test_orphan_folder_with_only_a_log(tmp_path):
    folder = build_case_folder(FolderCase("orphan", edits={n: None for n in
                                                          ("README.md", "submission.json", "train_gpt.py", *LOGS[1:])}),
                               tmp_path)
    result = audit_folder(folder, AuditOptions())
    assert result.verdict.value == "FAIL"
    assert "PG601" in codes(result)

"""Hostile submissions: hidden code never passes, parser crashes and hangs cost one folder,
bad input becomes a finding. Every hostile folder is built here from the bundled example."""

from __future__ import annotations

import base64
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgolf_audit.audit import audit_folder, audit_paths
from pgolf_audit.cases import build_case_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.rulebase import FolderCase
from pgolf_audit.unwrap import unwrap

# Code whose plain spelling the legality rules FAIL: it trains on the validation tokens.
ILLEGAL = "import os\nos.system('echo trained on validation data')\n"
BLOB = base64.b85encode(lzma.compress(ILLEGAL.encode())).decode()
DATA = "open(sys.argv[1]).read()"  # a file chosen at run time


def readable_script(middle: str) -> str:
    """A readable training-script shape (over the wrapper heuristics' size) with ``middle`` inside."""
    functions = "".join(f"def helper_{i}(x):\n    \"\"\"Step {i} of the model.\"\"\"\n    return x * {i} + {i}\n\n\n"
                        for i in range(120))
    return "import math\nimport lzma, base64\n\n" + functions + middle + "\n" + functions.replace("helper_", "later_")


HIDDEN = {
    "line continuation": readable_script(f"exec\\\n({DATA})"),
    "assigned alias": readable_script(f"run = exec\nrun({DATA})"),
    "getattr on __builtins__": readable_script(f"getattr(__builtins__, 'ex' + 'ec')({DATA})"),
    "vars(__builtins__)": readable_script(f"vars(__builtins__)['exec']({DATA})"),
    "builtins module": readable_script(f"import builtins as b\nb.exec({DATA})"),
    "eval of input": readable_script("result = eval(input())"),
    "import of a computed name": readable_script("import importlib\nplugin = importlib.import_module(sys.argv[1])"),
    "importlib.__import__ of a computed name": readable_script("import importlib\nplugin = importlib.__import__(sys.argv[1])"),
    "utf-7 coding cookie": "# coding: utf-7\n" + readable_script("x = 1 #+AAo-import os"),
}


def hostile_folder(tmp_path: Path, name: str, script: str | bytes, **extra: str | bytes) -> Path:
    edits = {"train_gpt.py": script, "payload.txt": ILLEGAL, **extra}
    return build_case_folder(FolderCase(name, edits=edits, folder_name="2026-04-20_Hostile"), tmp_path)


@pytest.mark.parametrize("spelling", sorted(HIDDEN))
def test_hidden_code_is_never_passed(tmp_path, spelling):
    folder = hostile_folder(tmp_path, spelling, HIDDEN[spelling])
    result = audit_folder(folder, AuditOptions())
    assert result.verdict.value in ("INCOMPLETE", "FAIL")
    pg903 = [f for f in result.findings if f.code == "PG903"]
    assert pg903, [f.message for f in result.findings]
    assert any(word in pg903[0].message for word in ("not a literal", "encoding")), pg903[0].message


def test_the_plain_spellings_are_readable(tmp_path):
    # the control: without the hidden call, the same script unwraps as plain code
    assert not unwrap("train_gpt.py", readable_script("x = 1"), lambda _: None).layers


def test_embedded_payload_in_a_readable_script_is_read_in_place(tmp_path):
    script = readable_script(f"exec(lzma.decompress(base64.b85decode({BLOB!r})))")
    code = unwrap("train_gpt.py", script, lambda _: None)
    assert "os.system('echo trained on validation data')" in code.source
    assert "exec(" not in code.source and code.layers and "embedded payload" in code.layers[0].description
    folder = hostile_folder(tmp_path, "embedded", script)
    result = audit_folder(folder, AuditOptions())
    assert result.verdict.value != "PASS"
    assert any(f.code == "PG605" and "embedded payload" in f.message for f in result.findings)


PARSER_BREAKERS = {
    "2,000 nested parentheses": "x = " + "(" * 2000 + "1" + ")" * 2000 + "\n",
    "5,000 nested calls": "x = " + "f(" * 5000 + "1" + ")" * 5000 + "\n",
    "20,000-term sum": "x = " + "+".join(["1"] * 20000) + "\n",
}


@pytest.mark.parametrize("shape", sorted(PARSER_BREAKERS))
def test_parser_breaking_code_is_incomplete_at_once(tmp_path, shape):
    folder = hostile_folder(tmp_path, shape, PARSER_BREAKERS[shape])
    result = audit_folder(folder, AuditOptions())
    assert result.verdict.value == "INCOMPLETE"
    assert any(f.code == "PG903" for f in result.findings)


def test_a_crashing_folder_costs_only_itself(tmp_path):
    # a folder whose audit process dies (as on a libcst segfault) next to a good one
    good = hostile_folder(tmp_path / "good", "good", readable_script("x = 1"))
    crash = hostile_folder(tmp_path / "crash", "crash", readable_script("x = 1"))
    (crash / "submission.json").write_text('{"val_bpb": 1.0}\n')
    import pgolf_audit.audit as audit_module

    real = audit_module.audit_folder

    def dies_on_crash(path, options, display=None):
        if Path(path) == crash:
            os.kill(os.getpid(), 11)  # SIGSEGV in the child only
        return real(path, options, display)

    audit_module.audit_folder = dies_on_crash
    try:
        report = audit_paths([good, crash], AuditOptions(jobs=2), isolated=True)
    finally:
        audit_module.audit_folder = real
    by_path = {r.path: r for r in report.results}
    assert set(by_path) == {str(good), str(crash)}
    assert by_path[str(crash)].verdict.value == "INCOMPLETE"
    assert "SIGSEGV" in by_path[str(crash)].findings[0].message
    good_result = by_path[str(good)]
    assert good_result.checks and not any(f.code == "PG900" for f in good_result.findings)


def test_a_hanging_folder_is_stopped_at_the_time_limit(tmp_path):
    folder = hostile_folder(tmp_path, "hang", readable_script("x = 1"))
    import pgolf_audit.audit as audit_module

    real = audit_module.audit_folder

    def hangs(path, options, display=None):
        import time

        time.sleep(60)

    audit_module.audit_folder = hangs
    try:
        report = audit_paths([folder], AuditOptions(jobs=1), isolated=True, time_limit_s=1)
    finally:
        audit_module.audit_folder = real
    assert report.results[0].verdict.value == "INCOMPLETE"
    assert "1-second limit" in report.results[0].findings[0].message


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pgolf_audit", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_bad_input_gives_findings_not_tracebacks(tmp_path):
    loop = hostile_folder(tmp_path / "loop", "loop", readable_script("x = 1"))
    os.symlink("loop_b", loop / "loop_a")
    os.symlink("loop_a", loop / "loop_b")
    digits = hostile_folder(tmp_path / "digits", "digits", readable_script("x = 1"))
    text = (digits / "submission.json").read_text()
    (digits / "submission.json").write_text(text.replace("{", '{"seed_big": ' + "9" * 5000 + ",", 1))
    names = hostile_folder(tmp_path / "names", "names", readable_script("x = 1"))
    (names / os.fsdecode(b"bad\xff.log")).write_text("x\n")
    (names / "esc\x1b[31mred\nline.log").write_text("x\n")
    surrogate = hostile_folder(tmp_path / "surrogate", "surrogate", readable_script("x = 1"))
    text = (surrogate / "submission.json").read_text()
    (surrogate / "submission.json").write_text(text.replace("{", '{"name": "\\ud800", "x": NaN,', 1))

    done = run_cli("--format", "json", str(tmp_path), cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.returncode in (1, 2)
    doc = json.loads(done.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON report"))
    verdicts = {Path(r["path"]).parts[len(tmp_path.parts)]: r for r in doc["results"]}
    assert set(verdicts) == {"loop", "digits", "names", "surrogate"}
    assert any("Symlink loop" in f["message"] for f in verdicts["loop"]["findings"])
    assert any(f["code"] == "PG607" and "5,000 digits" in f["message"] for f in verdicts["digits"]["findings"])
    assert verdicts["digits"]["verdict"] == "FAIL"
    messages = " ".join(f["message"] for f in verdicts["names"]["findings"])
    assert "not valid UTF-8" in messages and "control characters" in messages

    text_run = run_cli("--format", "text", str(tmp_path / "names"), cwd=tmp_path)
    assert "Traceback" not in text_run.stderr
    assert "\x1b" not in text_run.stdout and "\\x1b" in text_run.stdout


def test_a_folder_padded_past_the_listing_cap_keeps_its_record_files(tmp_path):
    folder = hostile_folder(tmp_path, "padded", readable_script("x = 1"))
    for i in range(2100):
        (folder / f"0pad_{i:05d}.txt").write_text("")
    result = audit_folder(folder, AuditOptions())
    messages = " ".join(f.message for f in result.findings)
    assert "more than 2000 files" in messages
    assert not any(f.code == "PG601" for f in result.findings), messages


def test_an_extra_log_too_large_to_read_makes_the_folder_incomplete(tmp_path):
    folder = hostile_folder(tmp_path, "big log", readable_script("x = 1"))
    with open(folder / "train_seed7.log", "wb") as handle:  # sparse: 2 GB on paper, nothing on disk
        handle.truncate(2 << 30)
    result = audit_folder(folder, AuditOptions())
    assert result.verdict.value in ("INCOMPLETE", "FAIL")
    pg604 = next(c for c in result.checks if c.code == "PG604")
    assert pg604.status.value == "incomplete" and "train_seed7.log" in pg604.reason

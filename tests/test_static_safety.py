"""Static mode never executes submission code.

A record folder is planted with payloads that would leave a marker file if any of their code
ran: at module level of the script, inside a helper module it imports, in a wrapped layer, and
in the wrapper's own expression. The full audit (every rule, every renderer) must leave no
marker, must never pass the payload source to exec/eval/compile, and must never import the
submission's modules.
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgolf_audit.audit import audit_paths
from pgolf_audit.cases import build_case_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.render import render
from pgolf_audit.rulebase import FolderCase
from pgolf_audit.wrappers import make_wrapper

PAYLOAD_TOKEN = "PLANTED_PAYLOAD_7f3a"


def payload(marker: Path, where: str) -> str:
    return (
        f"# {PAYLOAD_TOKEN}\n"
        "import os, pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text({where!r})\n"
        f"os.system('touch {marker}.system')\n"
    )


def plant(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "executed.marker"
    inner_helper = payload(marker, "helper module")
    source = (
        payload(marker, "wrapped train_gpt.py")
        + "import planted_helper\n"
        + "def main():\n    planted_helper.run()\n\nif __name__ == '__main__':\n    main()\n"
    )
    # The outer wrapper's own expression also carries a side effect; interpreting only the
    # whitelisted decoder grammar must refuse it, not run it.
    wrapped = make_wrapper(source)
    case = FolderCase(
        "planted payloads",
        edits={
            "train_gpt.py": wrapped,
            "planted_helper.py": inner_helper + "def run():\n    pass\n",
            "stub_exec.py": f"exec(__import__('os').system('touch {marker}.stub'))\n",
        },
    )
    folder = build_case_folder(case, tmp_path)
    return folder, marker


def test_full_audit_leaves_planted_payloads_inert(tmp_path, monkeypatch):
    folder, marker = plant(tmp_path)
    seen_sources: list[str] = []

    def guard(name, real):
        def wrapper(*args, **kwargs):
            text = args[0] if args else ""
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            if isinstance(text, str) and PAYLOAD_TOKEN in text:
                seen_sources.append(name)
                raise AssertionError(f"submission code reached {name}()")
            return real(*args, **kwargs)
        return wrapper

    # numpy and scipy run exec/eval on their own code while they import: import them first
    import scipy.stats  # noqa: F401

    for name in ("exec", "eval", "compile"):
        monkeypatch.setattr(builtins, name, guard(name, getattr(builtins, name)))
    monkeypatch.setattr(os, "system", lambda *a, **k: (_ for _ in ()).throw(AssertionError("os.system called")))
    modules_before = set(sys.modules)

    report = audit_paths([folder], AuditOptions(jobs=1))
    for fmt in ("markdown", "json", "text"):
        render(report, fmt)

    assert not seen_sources
    assert not list(tmp_path.glob("executed.marker*"))
    assert not {"planted_helper", "train_gpt", "stub_exec"} & (set(sys.modules) - modules_before)
    # The audit still read the planted code: the helper was found as counted code.
    result = report.results[0]
    counted = [f["path"] for f in result.code.get("counted_files", [])]
    assert "planted_helper.py" in counted


def test_cli_in_a_fresh_process_leaves_payloads_inert(tmp_path):
    folder, marker = plant(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pgolf_audit", str(folder), "--format", "json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    json.loads(proc.stdout)
    assert not list(tmp_path.glob("executed.marker*"))
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("expression", [
    "exec(__import__('os').system('touch {m}'))",
    "import lzma\nexec(lzma.decompress(open('{m}', 'w').write('x')))",
    "import base64\nexec(base64.b85decode(__import__('pathlib').Path('{m}').write_text('x')))",
])
def test_hostile_wrapper_expressions_are_refused_not_run(tmp_path, expression):
    marker = tmp_path / "hostile.marker"
    case = FolderCase("hostile wrapper", edits={"train_gpt.py": expression.format(m=marker) + "\n"})
    folder = build_case_folder(case, tmp_path)
    report = audit_paths([folder], AuditOptions(jobs=1))
    assert not marker.exists()
    result = report.results[0]
    assert result.verdict.value in ("INCOMPLETE", "FAIL", "NEEDS_REVIEW")
    assert result.verdict.value != "PASS"

"""The audit over every real record folder of the corpus (data only: no code in it).

Nothing may crash; every folder gets a verdict; the per-folder verdict and finding codes are
compared with a committed snapshot so that any change of behaviour shows up in review
(regenerate with PGOLF_UPDATE_SNAPSHOTS=1). Known facts of the corpus are asserted one by one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgolf_audit.audit import audit_paths
from pgolf_audit.context import AuditOptions

SNAPSHOT = Path(__file__).parent / "golden" / "corpus_snapshot.json"


@pytest.fixture(scope="module")
def corpus_results(corpus_root):
    report = audit_paths([corpus_root], AuditOptions(jobs=os.cpu_count() or 1))
    assert not report.errors, report.errors
    return {Path(r.path).name: r for r in report.results}


def summarize(results) -> dict:
    return {
        name: {"verdict": r.verdict.value, "codes": sorted({f"{f.code}:{f.severity.value}" for f in r.findings})}
        for name, r in sorted(results.items())
    }


def test_every_folder_audited_without_a_crash(corpus_results):
    assert len(corpus_results) == 60
    for name, r in corpus_results.items():
        crashes = [f.message for f in r.findings if f.code == "PG900"]
        assert not crashes, f"{name}: {crashes}"
        assert r.verdict.value != "PASS", f"{name} has no code, so it cannot pass"


def test_snapshot(corpus_results):
    current = summarize(corpus_results)
    if os.environ.get("PGOLF_UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    changed = {k for k in expected.keys() | current.keys() if expected.get(k) != current.get(k)}
    assert not changed, "corpus behaviour changed for: " + ", ".join(sorted(changed)) + \
        "\n(if intended, rerun with PGOLF_UPDATE_SNAPSHOTS=1 and review the diff)"


def findings(results, folder_prefix, code):
    matches = [r for n, r in results.items() if n.startswith(folder_prefix)]
    assert len(matches) == 1, f"{folder_prefix}: {len(matches)} folders"
    return [f for f in matches[0].findings if f.code == code]


@pytest.mark.parametrize("folder,code,words", [
    ("2026-04-06_SP8192_HessianSDClip", "PG201", ["16,059,704"]),
    ("2026-03-23_DGAttention", "PG201", ["16,638,468"]),
    ("2026-03-19_int6_STE QAT", "PG201", ["16,186,500"]),
    ("2026-04-06_SP8192_HessianSDClip", "PG203", ["model-only"]),
    ("2026-04-01_Vocab4096", "PG203", ["mean"]),
    ("2026-03-19_MLP3x_QAT", "PG401", ["matches no"]),
    ("2026-03-19_Seq2048_FP16Emb", "PG401", ["seed 3"]),
    ("2026-03-17_LoRA_TTT", "PG301", ["2,400.107 s"]),
    ("2026-03-17_LoRA_TTT", "PG408", ["world size 2"]),
    ("2026-03-17_LoRA_TTT", "PG501", ["1 distinct seed"]),
    ("2026-04-18_PR1626_CaseOps", "PG403", ["train_seed0.log", "1337"]),
    ("2026-04-30_Random_Linear_Adapter", "PG403", ["seed 1337"]),
    ("2026-03-19_MixedQuant", "PG407", ["3 runs"]),
    ("2026-03-19_WarmdownQuantization", "PG405", ["1.2154"]),
    ("2026-03-22_11L_EMA_GPTQ-lite", "PG406", ["1.1233"]),
    ("2026-04-08_SP8192_ParallelResid", "PG203", ["seed 314"]),
    ("2026-04-04_GDN_Hybrid", "PG402", ["1341"]),
    ("2026-03-25_ValCalib", "PG302", ["quantization"]),
    ("2026-03-19_SwiGLU", "PG601", ["no train log"]),
    ("2026-04-05_118M_XNOR", "PG601", ["submission.json"]),
    ("2026-03-24_74M_Ternary", "PG602", ["submission_ternary.json"]),
    ("2026-03-17_NaiveBaseline", "PG701", ["63,779,840"]),
    ("2026-04-05_118M_XNOR", "PG701", ["5.9% below sp1024"]),
    ("2026-03-31_LegendreGPT", "PG701", ["0.35% above sp1024"]),
])
def test_known_corpus_facts(corpus_results, folder, code, words):
    found = findings(corpus_results, folder, code)
    assert found, f"{folder}: expected {code}"
    assert any(all(w in f.message for w in words) for f in found), [f.message for f in found]


def test_no_code_means_legality_could_not_be_checked(corpus_results):
    r = corpus_results["2026-04-09_A2_Muon097_3Seed"]
    assert any(f.code == "PG601" and "train_gpt.py" in f.message for f in r.findings)
    assert r.verdict.value == "FAIL"

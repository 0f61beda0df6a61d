"""Tests for pgolf_audit.parsers.readme."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_modules import load
from pgolf_audit.parsers.readme import ReadmeClaims, parse_readme


@pytest.fixture(scope="module")
def corpus_readmes(corpus_root: Path) -> dict[str, ReadmeClaims]:
    return {path.parent.name: parse_readme(path.read_text(encoding="utf-8", errors="replace"))
            for path in sorted(corpus_root.glob("*/*/README.md"))}


def _readme(corpus_readmes: dict[str, ReadmeClaims], prefix: str) -> ReadmeClaims:
    hits = [c for folder, c in corpus_readmes.items() if folder.startswith(prefix)]
    assert len(hits) == 1, prefix
    return hits[0]


# ---------------------------------------------------------------------------------------------
# Whole corpus
# ---------------------------------------------------------------------------------------------


def test_every_corpus_readme_parses(corpus_readmes):
    assert len(corpus_readmes) == 59  # the orphan STE folder has no README
    for folder, claims in corpus_readmes.items():
        for mention in claims.bpb_mentions:
            assert 0.5 <= mention.value < 10, (folder, mention)
        if claims.headline_bpb is not None:
            assert claims.headline_bpb.kind == "headline" and claims.headline_bpb.line <= 30


def test_most_headlines_agree_with_a_number_elsewhere_in_the_readme(corpus_readmes):
    with_headline = [c for c in corpus_readmes.values() if c.headline_bpb is not None]
    assert len(with_headline) >= 40
    for claims in with_headline:
        assert any(abs(m.value - claims.headline_bpb.value) < 1e-9 for m in claims.bpb_mentions)


# ---------------------------------------------------------------------------------------------
# Real READMEs
# ---------------------------------------------------------------------------------------------


def test_readme_describing_an_earlier_submission(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-19_WarmdownQuantization")
    assert c.headline_bpb.value == 1.2154 and c.headline_bpb.line == 4
    assert c.title == "Warmdown-Quantization: Training for Compression"


def test_title_headline_and_sliding_column(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-24_74M_Ternary")
    assert c.headline_bpb.value == 1.157 and c.headline_reason == "title"
    assert c.mean_bpb.value == 1.157 and c.mean_bpb.kind == "table"
    assert {s: m.value for s, m in c.seed_bpb.items()} == {42: 1.1565, 1337: 1.1568, 7: 1.1578}
    assert c.seed_table_column == "Sliding BPB (s16)"
    assert ("temperature", c.keywords[[k for k, _ in c.keywords].index("temperature")][1]) in c.keywords


def test_column_chosen_by_the_headline_mean(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-19_MLP3x_QAT")
    assert c.headline_bpb.value == 1.1502
    assert c.seed_table_column == "slide_bpb"
    assert c.seed_bpb[1337].value == 1.15055135 and c.mean_bpb.value == 1.15015359
    rla = _readme(corpus_readmes, "2026-04-30_Random_Linear_Adapter")
    assert rla.headline_bpb.value == 1.1971 and rla.seed_table_column == "sliding_val_bpb"
    assert {s: m.value for s, m in rla.seed_bpb.items()} == {1337: 1.1971, 42: 1.1969, 2026: 1.1967}


def test_bold_post_ttt_column(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-23_LeakyReLU_LegalTTT")
    assert c.headline_bpb.value == 1.1194
    assert {s: m.value for s, m in c.seed_bpb.items()} == {1337: 1.1192, 42: 1.12, 2025: 1.1189}
    assert c.mean_bpb.value == 1.1194
    assert {"TTT", "score-first"} <= {k for k, _ in c.keywords}


def test_only_the_first_seed_table_counts(corpus_readmes):
    c = _readme(corpus_readmes, "2026-04-22_SP8192_CaseOps")
    assert sorted(c.seed_bpb) == [1, 314, 777, 1337, 2025]  # the 7-run disclosure table is not merged in
    assert c.mean_bpb.value == 1.06453


def test_escaped_markdown_and_non_record_words(corpus_readmes):
    smear = _readme(corpus_readmes, "2026-03-19_smeargate_orthoinit")
    assert smear.headline_bpb.value == 1.1556  # "**val\\_bpb: 1.1556**"
    hessian = _readme(corpus_readmes, "2026-04-06_SP8192_HessianSDClip")
    assert hessian.headline_bpb.value == 1.08354 and hessian.mean_bpb.value == 1.08354
    assert "non-record" in {k for k, _ in hessian.keywords}


def test_first_of_two_bold_values(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-23_DGAttention")
    assert c.headline_bpb.value == 1.1898
    assert any(m.value == 1.1554 for m in c.bpb_mentions)


def test_no_headline_from_a_gap_or_a_section_heading(corpus_readmes):
    depth = _readme(corpus_readmes, "2026-03-21_DepthRecurrence")
    assert depth.headline_bpb is None  # "0.37 bpb to 0.002 bpb" is a gap, not a score
    lora = _readme(corpus_readmes, "2026-03-17_LoRA_TTT")
    assert lora.title is None and lora.headline_bpb is None


def test_seed_values_from_prose(corpus_readmes):
    long_context = _readme(corpus_readmes, "2026-03-18_LongContextSeq2048")
    assert {s: m.value for s, m in long_context.seed_bpb.items()} == {1337: 1.20576485, 1338: 1.2061746,
                                                                       1339: 1.20715923}
    assert all(m.kind == "mention" for m in long_context.seed_bpb.values())


def test_variational_bound_headline_and_hardware(corpus_readmes):
    c = _readme(corpus_readmes, "2026-03-29_LLaDA")
    assert c.headline_bpb.value == 1.1465
    assert "hardware other than 8xH100" in {k for k, _ in c.keywords}


# ---------------------------------------------------------------------------------------------
# Synthetic READMEs
# ---------------------------------------------------------------------------------------------

README = """\
# Record: Something Clever — val_bpb 1.1000 (3-seed mean)

**val_bpb: 1.1000** (3-seed mean, std 0.0010) | 15.9 MB

| Seed | Pre-quant BPB | **Post-TTT BPB** | TTT gain | Artifact |
|------|---------------|------------------|----------|----------|
| 1 | 1.1200 | **1.0990** | -0.0210 | 15,900,001 |
| 2 | 1.1210 | 1.1000 | -0.0210 | 15,900,002 |
| 3 | 1.1220 | 1.1010 | -0.0210 | 15,900,003 |
| **Mean** | 1.1210 | **1.1000** | -0.0210 | |

We never train on the validation set; TTT is score-first. The two-pass variant was dropped.

```
final_int8_zlib_roundtrip_exact val_loss:1.9 val_bpb:1.09900000
```
"""


def test_synthetic_readme():
    c = parse_readme(README)
    assert c.title.startswith("Record: Something Clever") and c.title_line == 1
    assert c.headline_bpb.value == 1.1 and c.headline_reason == "title"
    assert {s: m.value for s, m in c.seed_bpb.items()} == {1: 1.099, 2: 1.1, 3: 1.101}
    assert c.seed_table_column == "Post-TTT BPB"
    assert c.mean_bpb.kind == "table" and c.mean_bpb.value == 1.1
    code_mentions = [m for m in c.bpb_mentions if m.in_code]
    assert [m.value for m in code_mentions] == [1.099]
    keywords = {k for k, _ in c.keywords}
    assert {"val data", "TTT", "score-first", "two-pass"} <= keywords
    assert ("two-pass", 12) in c.keywords


def test_headline_inside_code_or_table_is_ignored():
    text = "Intro text\n\n```\nval_bpb: 1.2000\n```\n\n| val_bpb | 1.3000 |\n|---|---|\n\nplain words\n"
    c = parse_readme(text)
    assert c.headline_bpb is None
    assert [m.value for m in c.bpb_mentions] == [1.2]


def test_list_items_are_not_headlines_but_bold_statements_are():
    assert parse_readme("intro\n- val_bpb: 1.2500 on the old run\n").headline_bpb is None
    c = parse_readme("intro\n\nThis reaches **1.2345 ± 0.002 BPB** in ten minutes.\n")
    assert c.headline_bpb.value == 1.2345


@pytest.mark.parametrize("text", ["", "\n\n", "|", "| a |\n|", "```", "#", "**", "x" * 50_000,
                                  "| Seed | BPB |\n|---|---|\n| 1 | |\n| x | 1.2 |\n", "\x00\ufffd"])
def test_odd_input_never_raises(text):
    assert isinstance(parse_readme(text), ReadmeClaims)


def test_large_readme_keeps_its_claims():
    # its speed is measured in benchmarks/bench_hostile.py
    assert parse_readme((README + "\n") * 500).headline_bpb == parse_readme(README).headline_bpb


def test_one_line_fence_is_inline_code():
    text = "intro\n\n```bash pip install zstandard```\n\n| Seed | BPB |\n|---|---|\n| 1 | 1.2000 |\n| 2 | 1.2100 |\n"
    c = parse_readme(text)
    assert {s: m.value for s, m in c.seed_bpb.items()} == {1: 1.2, 2: 1.21}


def test_seed_selection_is_flagged(corpus_readmes):
    c = _readme(corpus_readmes, "2026-04-22_SP8192_CaseOps")
    assert "seed selection" in {k for k, _ in c.keywords}
    depth = _readme(corpus_readmes, "2026-03-21_DepthRecurrence")
    assert "val data" in {k for k, _ in depth.keywords}  # "829 steps of AdamW on validation data"


@pytest.mark.parametrize("line", load("bench_hostile").PATHOLOGICAL_README_LINES)
def test_pathological_lines_never_raise(line):
    # how fast is benchmarks/bench_hostile.py's question
    assert isinstance(parse_readme((line + "\n") * 10), ReadmeClaims)

"""BPB identity check against real corpus numbers (records_findings.md §9) and the ratio table."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from pgolf_audit.bpb_identity import (
    IdentityVerdict,
    TokenizerHint,
    check_bpb_identity,
    default_table_path,
    load_ratio_table,
    resolve_tokenizer,
)

SP1024 = TokenizerHint(tokenizer_path="./data/tokenizers/fineweb_1024_bpe.model")
SP4096 = TokenizerHint(vocab_size=4096)
SP8192 = TokenizerHint(dataset="fineweb10B_sp8192", vocab_size=8192)
CASEOPS = TokenizerHint(vocab_size=8192, caseops=True)


def test_module_stays_light():
    # The static audit must not pull heavy dependencies in through this module.
    code = ("import sys, pgolf_audit.bpb_identity as m; m.load_ratio_table(); "
            "print(','.join(x for x in ('torch', 'numpy', 'sentencepiece') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_naive_baseline_is_flagged_without_token_count():
    result = check_bpb_identity(SP1024, "2.07269931", "1.22436570")
    assert result.verdict is IdentityVerdict.DEVIATES
    assert "partial validation set" in result.cause


def test_table_has_all_challenge_tokenizers():
    table = load_ratio_table()
    assert set(table.tokenizers) >= {"sp1024", "sp4096", "sp8192", "sp8192_caseops", "byte260", "bytes256"}
    assert table.tokenizers["bytes256"].ratio == pytest.approx(1 / math.log(2), rel=1e-6)
    assert table.tokenizers["sp1024"].ratio == pytest.approx(0.592256, abs=2e-6)
    assert table.tokenizers["sp8192"].ratio == pytest.approx(0.387131, abs=2e-6)
    assert table.ratio_rel_tolerance > 0 and table.causes
    assert table.corpus_commit.startswith("4908dc46f")


@pytest.mark.parametrize("hint, key", [
    (SP1024, "sp1024"),
    (TokenizerHint(dataset="/root/data/datasets/fineweb10B_sp1024/"), "sp1024"),
    (SP4096, "sp4096"),
    (SP8192, "sp8192"),
    (CASEOPS, "sp8192_caseops"),
    (TokenizerHint(tokenizer_path="fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"), "sp8192_caseops"),
    (TokenizerHint(dataset="fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"), "sp8192_caseops"),
    (TokenizerHint(dataset="fineweb10B_byte260"), "byte260"),
    (TokenizerHint(vocab_size=256), "bytes256"),
    (TokenizerHint(vocab_size=512), None),
])
def test_resolve_tokenizer(hint, key):
    assert resolve_tokenizer(hint, load_ratio_table())[0] == key


def test_conflicting_hints_are_noted():
    key, notes = resolve_tokenizer(TokenizerHint(tokenizer_path="fineweb_1024_bpe.model", vocab_size=8192),
                                   load_ratio_table())
    assert key == "sp1024" and notes and "sp8192" in notes[0]


@pytest.mark.parametrize("hint, loss, bpb, val_tokens", [
    (SP8192, "2.83553169", "1.09772268", 40540160),          # 2026-04-09_A2_Muon097 quantized
    (SP8192, "2.79238613", "1.08101969", 40540160),          # same run, sliding window
    (SP4096, "2.56767905", "1.11588374", 45508608),          # 2026-04-01_Vocab4096 roundtrip
    (SP4096, "2.55230176", "1.10934430", 45514752),          # 2026-04-03_MuonEqR (6,144 more tokens)
    (CASEOPS, "2.32748105", "1.06356801", 47851520),         # 04-22 CaseOps quantized_ttt_phased
    (CASEOPS, "2.35463847", "1.07590803", 47851520),         # same run, diagnostic quantized
    (SP1024, "2.03588345", "1.20576485", 62021632),         # 2026-03-18_LongContextSeq2048 exact
    (SP1024, "2.0366", "1.2062", 62021632),                  # same folder, 4-decimal twin
])
def test_normal_lines_pass(hint, loss, bpb, val_tokens):
    result = check_bpb_identity(hint, loss, bpb, val_tokens)
    assert result.verdict is IdentityVerdict.OK, result
    assert abs(result.relative_deviation) <= result.tolerance
    assert result.cause is None


def test_naive_baseline_older_export_is_flagged():
    result = check_bpb_identity(SP1024, "2.07269931", "1.22436570", val_tokens=63779840)
    assert result.verdict is IdentityVerdict.DEVIATES
    assert result.measured_ratio == pytest.approx(0.590711, abs=1e-6)
    assert result.cause_id == "different-validation-set"
    assert "63,779,840" in result.cause and "62,021,632" in result.cause


def test_xnor_partial_validation_set_is_flagged():
    # 2026-04-05_XNOR-Net: 4-decimal lines, ratio ~0.55727, 5.9% below sp1024.
    result = check_bpb_identity(SP1024, "2.8633", "1.5956", val_tokens=500000)
    assert result.verdict is IdentityVerdict.DEVIATES
    assert result.relative_deviation == pytest.approx(-0.059, abs=0.001)
    assert result.cause_id == "partial-validation-set"
    assert "5.9% below sp1024" in result.cause
    assert "far below 62,021,632" in result.cause and "partial validation set" in result.cause
    # Without the token count the cause names both readings.
    unknown_count = check_bpb_identity(SP1024, "2.8633", "1.5956")
    assert unknown_count.verdict is IdentityVerdict.DEVIATES
    assert "partial validation set" in unknown_count.cause


def test_legendre_nonstandard_accounting_is_flagged():
    result = check_bpb_identity(SP1024, "2.0784", "1.2353", val_tokens=62021632)
    assert result.verdict is IdentityVerdict.DEVIATES
    assert result.measured_ratio == pytest.approx(0.594351, abs=1e-6)
    assert result.relative_deviation == pytest.approx(0.0035, abs=2e-4)
    assert result.cause_id == "bytes-undercounted"


def test_leading_space_double_count_is_named():
    # Denominator inflated by ~17% (rules.md R-BPB-LUT-DOUBLE-COUNT): ratio drops by 1/1.17.
    loss = 2.33
    bpb = loss * 0.387131 / 1.17
    result = check_bpb_identity(SP8192, loss, bpb, val_tokens=40540160)
    assert result.verdict is IdentityVerdict.DEVIATES
    assert result.cause_id == "leading-space-double-count"
    assert "17" in result.cause and "leading-space byte counted twice" in result.cause


def test_byte_fallback_overcount_is_named():
    # Scylla (#1184): +4.13% bytes from byte-fallback pieces counted as 3 bytes.
    loss = 2.5
    bpb = loss * 0.592256 / 1.0413
    result = check_bpb_identity(SP1024, loss, bpb, val_tokens=62021632)
    assert result.cause_id == "byte-fallback-overcount"
    assert "byte-fallback pieces counted as 3 bytes" in result.cause


def test_caseops_transformed_bytes_is_named():
    # #2138: 164,594,398 transformed bytes instead of 151,074,309 original bytes (+8.95%).
    loss = 2.33
    bpb = loss * 0.4569313 / (164594398 / 151074309)
    result = check_bpb_identity(CASEOPS, loss, bpb, val_tokens=47851520)
    assert result.cause_id == "caseops-transformed-bytes"


def test_unknown_tokenizer():
    result = check_bpb_identity(TokenizerHint(vocab_size=512), 3.0, 1.5)
    assert result.verdict is IdentityVerdict.UNKNOWN_TOKENIZER
    assert result.tokenizer is None and result.measured_ratio == pytest.approx(0.5)


def test_rounding_widens_tolerance_only_for_strings():
    exact = check_bpb_identity(SP8192, 2.8355, 2.8355 * 0.387131 * (1 + 6e-4), 40540160)
    assert exact.verdict is IdentityVerdict.DEVIATES
    printed = check_bpb_identity(SP8192, "2.8", f"{2.8 * 0.387131:.2f}", 40540160)
    assert printed.tolerance > load_ratio_table().ratio_rel_tolerance


def test_table_is_a_file_in_rules_tracks():
    assert default_table_path().parent.name == "tracks"


def _corpus_ratio_lines(corpus_root):
    from pgolf_audit.reference_impl import derive_bpb_ratios as derive
    stats, _ = derive.collect(corpus_root)
    return stats


def test_every_precise_corpus_line_but_the_known_deviations_passes(corpus_root):
    stats = _corpus_ratio_lines(corpus_root)
    failures = []
    hints = {"sp1024": SP1024, "sp4096": SP4096, "sp8192": SP8192, "sp8192_caseops": CASEOPS,
             "byte260": TokenizerHint(dataset="fineweb10B_byte260"), "bytes256": TokenizerHint(vocab_size=256)}
    for key, tokenizer_stats in stats.items():
        for line in tokenizer_stats.lines:
            result = check_bpb_identity(hints[key], line.val_loss, line.val_bpb)
            if not result.ok:
                failures.append((line.folder, line.label, round(line.ratio, 6)))
    assert {f[0] for f in failures} == {"track_10min_16mb/2026-03-17_NaiveBaseline"}, failures


def test_committed_table_matches_a_fresh_derivation(corpus_root):
    from pgolf_audit.reference_impl import derive_bpb_ratios as derive
    assert derive.derive(corpus_root) == default_table_path().read_text(encoding="utf-8")


def test_custom_tokenizer_names_are_not_guessed():
    table = load_ratio_table()
    assert resolve_tokenizer(TokenizerHint(tokenizer_path="data/demo_sp1024_bpe.model"), table)[0] is None
    assert resolve_tokenizer(TokenizerHint(tokenizer_path="/x/fineweb_4096_bpe.model"), table)[0] == "sp4096"


def test_tokenizer_inferred_from_val_tokens_when_nothing_else_is_logged():
    # LegendreGPT prints neither tokenizer nor vocab size, but scores 62,021,632 tokens: sp1024.
    result = check_bpb_identity(TokenizerHint(val_tokens=62021632), "2.0784", "1.2353", 62021632)
    assert result.tokenizer == "sp1024"
    assert result.verdict is IdentityVerdict.DEVIATES
    assert "under-counted" in result.cause
    assert any("inferred from val_tokens" in n for n in result.notes)
    unknown = check_bpb_identity(TokenizerHint(val_tokens=12345), "2.0", "1.2", 12345)
    assert unknown.verdict is IdentityVerdict.UNKNOWN_TOKENIZER

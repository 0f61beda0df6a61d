"""Tests for pgolf_audit.parsers.submission_json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgolf_audit.parsers.submission_json import (
    KNOWN_KEYS,
    TRACK_10MIN,
    TRACK_NON_RECORD,
    SubmissionClaims,
    SubmissionJsonError,
    normalise_track,
    parse_submission_json,
)


@pytest.fixture(scope="module")
def corpus_claims(corpus_root: Path) -> dict[str, SubmissionClaims]:
    claims = {}
    for path in sorted(corpus_root.glob("*/*/submission*.json")):
        claims[path.parent.name] = parse_submission_json(path.read_bytes(), path.name)
    return claims


def _claims(corpus_claims: dict[str, SubmissionClaims], prefix: str) -> SubmissionClaims:
    hits = [c for folder, c in corpus_claims.items() if folder.startswith(prefix)]
    assert len(hits) == 1, prefix
    return hits[0]


def _parse(obj: dict | str | bytes) -> SubmissionClaims:
    if isinstance(obj, dict):
        obj = json.dumps(obj)
    if isinstance(obj, str):
        obj = obj.encode()
    return parse_submission_json(obj, "submission.json")


# ---------------------------------------------------------------------------------------------
# Whole corpus
# ---------------------------------------------------------------------------------------------


def test_all_corpus_files_parse_and_use_39_key_sets(corpus_claims):
    assert len(corpus_claims) == 58
    assert len({frozenset(c.raw) for c in corpus_claims.values()}) == 39


def test_every_corpus_key_is_known(corpus_claims):
    assert {folder: c.unknown_keys for folder, c in corpus_claims.items() if c.unknown_keys} == {}


def test_every_corpus_file_has_a_score_except_the_misnamed_one(corpus_claims):
    without = [folder for folder, c in corpus_claims.items() if c.val_bpb is None]
    assert without == ["2026-03-20_10L_Int5MLP_MuonWD04_SWA50"]


def test_tracks_normalise(corpus_claims):
    raw_to_track = {(c.track_raw, c.track) for c in corpus_claims.values() if c.track_raw is not None}
    assert raw_to_track == {
        ("10min_16mb", TRACK_10MIN),
        ("non-record-16mb", TRACK_NON_RECORD),
        ("non_record_16mb", TRACK_NON_RECORD),
        ("non-record-unlimited-compute-16mb", TRACK_NON_RECORD),
    }
    assert sum(1 for c in corpus_claims.values() if c.track_raw is None) == 31


def test_every_corpus_claim_with_bytes_records_its_key(corpus_claims):
    for folder, c in corpus_claims.items():
        for concept in ("val_bpb", "val_loss", "artifact_bytes", "code_bytes", "model_bytes", "train_seconds",
                        "eval_seconds", "steps"):
            if getattr(c, concept) is not None:
                assert concept in c.key_used, (folder, concept)


def test_seed_claims_line_up_with_seeds(corpus_claims):
    for folder, c in corpus_claims.items():
        for claim in c.seed_claims:
            assert claim.seed in c.seeds, (folder, claim.seed)


# ---------------------------------------------------------------------------------------------
# Aliases and shapes seen in the corpus (log_formats.md §5)
# ---------------------------------------------------------------------------------------------


def test_plain_baseline_shape(corpus_claims):
    c = _claims(corpus_claims, "2026-03-17_NaiveBaseline")
    assert (c.val_bpb, c.val_loss, c.artifact_bytes, c.code_bytes) == (1.2243657, 2.07269931, 15863489, 47642)
    assert c.key_used["artifact_bytes"] == "bytes_total" and c.key_used["code_bytes"] == "bytes_code"
    assert c.date == "2026-03-18T14:56:29Z" and c.date_iso == "2026-03-18"
    assert c.track is None and "track" in c.missing and c.seeds == [] and c.problems == []


def test_bpb_stored_under_val_loss(corpus_claims):
    c = _claims(corpus_claims, "2026-03-20_10L_Int5MLP")
    assert c.val_bpb is None and c.val_loss == 1.14276
    assert "val_bpb absent; val_loss 1.14276 looks like a bpb value" in c.problems
    assert "bytes_total 15900000 looks rounded" in c.problems
    assert "val_bpb" in c.missing


def test_mean_val_bpb_alias_and_code_bytes(corpus_claims):
    c = _claims(corpus_claims, "2026-03-19_SlidingWindow_FP16Emb_10L")
    assert c.val_bpb == 1.17475315 and c.key_used["val_bpb"] == "mean_val_bpb"
    assert c.val_loss == 1.98352149 and c.key_used["val_loss"] == "mean_val_loss"
    assert (c.artifact_bytes, c.key_used["artifact_bytes"]) == (15374243, "artifact_bytes")
    assert (c.code_bytes, c.key_used["code_bytes"]) == (50651, "code_bytes")
    assert c.seeds == [1337, 42, 7] and c.key_used["seeds"] == "seed_results (keys)"
    steps = {s.seed: s.steps for s in c.seed_claims}
    assert steps == {1337: 10424, 42: 10710, 7: 10498}
    assert c.p_value == 0.0001
    assert "github_id" in c.missing


def test_artifact_size_bytes_and_scalar_seed(corpus_claims):
    c = _claims(corpus_claims, "2026-03-19_smeargate_orthoinit")
    assert (c.artifact_bytes, c.key_used["artifact_bytes"]) == (15878809, "artifact_size_bytes")
    assert c.seeds == [1337] and c.key_used["seeds"] == "seed"
    assert (c.train_seconds, c.steps, c.hardware) == (600.0, 12047, "8xH100-80GB-SXM")
    assert {"name", "author", "github_id"} <= set(c.missing)


def test_artifact_max_is_kept_over_a_mean_total(corpus_claims):
    c = _claims(corpus_claims, "2026-04-22_SP8192_CaseOps")
    assert (c.artifact_bytes, c.key_used["artifact_bytes"]) == (15979182, "artifact_bytes_max")
    assert c.artifact_bytes_mean == 15975561
    assert any("bytes_total 15975561 is below artifact_bytes_max 15979182" in p for p in c.problems)
    assert c.seeds == [314, 2025, 777, 1, 1337]
    assert len(c.disclosed_seed_bpb) == 7 and c.disclosed_seed_bpb[9999] == 1.06534272
    first = c.seed_claims[0]
    assert (first.json_path, first.train_time_s, first.eval_time_s, first.steps) == ("seed_results.314", 596.091, 400.7, 4872)
    assert (c.train_seconds, c.key_used["train_seconds"]) == (596.082, "train_time_s_mean")


def test_mean_total_below_the_largest_seed(corpus_claims):
    for prefix, total, largest in (("2026-04-01_Vocab4096", 15916170, 15927782),
                                   ("2026-04-05_SP8192_GPTQ-Embeddings", 15985678, 15988983),
                                   ("2026-04-06_SP8192_HessianSDClip", 15978121, 15979649)):
        c = _claims(corpus_claims, prefix)
        assert c.artifact_bytes == total
        assert any(f"bytes_total {total} is below the largest per-seed artifact {largest}" in p for p in c.problems)


def test_only_a_mean_is_given(corpus_claims):
    mlp3x = _claims(corpus_claims, "2026-03-19_MLP3x_QAT")
    assert (mlp3x.artifact_bytes, mlp3x.key_used["artifact_bytes"]) == (15427455, "artifact_bytes_mean")
    assert "only artifact_bytes_mean is given; the cap applies to the largest artifact" in mlp3x.problems
    assert mlp3x.p_value is None and "p_value is the text '<0.001', not a number" in mlp3x.problems
    assert mlp3x.t_statistic == 313.2 and mlp3x.seeds == [1337, 42, 123] and mlp3x.seed_claims == []
    assert mlp3x.name == "11L_MLP3x_WD04_Int6QAT_Zstd22_SlidingWindow" and mlp3x.key_used["name"] == "run_name"
    # with per-seed bytes, their maximum is preferred to the mean
    caseops = _claims(corpus_claims, "2026-04-19_SP8192_CaseOps")
    assert (caseops.artifact_bytes, caseops.key_used["artifact_bytes"]) == (15978834, "largest per-seed value (seed_results.42)")


def test_per_seed_only_artifact_bytes(corpus_claims):
    c = _claims(corpus_claims, "2026-04-04_SP4096")
    assert c.artifact_bytes == 15999533 and "largest per-seed value" in c.key_used["artifact_bytes"]
    assert {s.seed: s.val_bpb for s in c.seed_claims} == {42: 1.08938974, 314: 1.08982552, 999: 1.08993367}


def test_seeds_dict_keyed_by_seed(corpus_claims):
    c = _claims(corpus_claims, "2026-04-06_SP8192_QK5_LegalTTT")
    assert c.seeds == [0, 42, 1234] and c.key_used["seeds"] == "seeds (keys)"
    seed0 = c.seed_claims[0]
    assert seed0.json_path == "seeds.0"
    assert (seed0.val_bpb, seed0.artifact_bytes, seed0.train_time_s, seed0.eval_time_s) == (1.08209788, 15991018, 588.004, 293.43)
    assert seed0.key_used == {"val_bpb": "val_bpb", "val_loss": "val_loss", "artifact_bytes": "bytes_total",
                              "train_time_s": "train_time_ms", "eval_time_s": "ttt_time_ms"}
    assert c.val_bpb == 1.08279384 and c.key_used["val_bpb"] == "val_bpb"  # mean_bpb agrees, no problem
    assert c.compliance["training_under_600s"] is True
    assert c.hardware.startswith("GCP 8xH100") and c.key_used["hardware"] == "platform"


def test_parallel_seed_scores_and_eval_time_list(corpus_claims):
    c = _claims(corpus_claims, "2026-04-03_MuonEqR")
    assert [(s.seed, s.val_bpb, s.json_path) for s in c.seed_claims] == [
        (42, 1.09057, "seed_scores[0]"), (0, 1.09084, "seed_scores[1]"), (1337, 1.0923, "seed_scores[2]")]
    assert c.eval_seconds_list == [83.0, 83.0, 83.0] and c.eval_seconds == 83.0
    assert c.model_bytes == 15946087 and c.key_used["model_bytes"] == "bytes_model_compressed"


def test_copied_per_seed_bytes(corpus_claims):
    c = _claims(corpus_claims, "2026-04-08_SP8192_ParallelResid")
    assert "every seed claims the same artifact_bytes 15991486 (copied rather than measured?)" in c.problems


def test_compliance_blocks_kept_as_is(corpus_claims):
    with_block = {folder for folder, c in corpus_claims.items() if c.compliance}
    assert len(with_block) == 10
    numeric = _claims(corpus_claims, "2026-04-29_SmearGateBOSFix")
    assert numeric.compliance["train_time_max_s"] == 599.623
    assert numeric.submission_type == "record_support"
    assert [(s.seed, s.val_bpb, s.train_time_s) for s in numeric.rerun_seed_claims] == [
        (42, 1.06083288, 592.054), (314, 1.06090748, 592.045), (1234, 1.06248776, 592.065)]
    assert numeric.rerun_seed_claims[0].json_path == "compliance_rerun.seed_results.42"
    assert numeric.artifact_bytes == 15952690


def test_val_var_bpb_and_missing_bytes(corpus_claims):
    c = _claims(corpus_claims, "2026-03-29_LLaDA")
    assert c.seed_claims[0].val_bpb == 1.1465 and c.seed_claims[0].key_used["val_bpb"] == "val_var_bpb"
    assert "artifact_bytes" in c.missing and c.eval_seconds == 1819


def test_rounded_sizes_and_model_bytes(corpus_claims):
    jepa = _claims(corpus_claims, "2026-03-26_37M_LeWM_Jepa")
    assert {"bytes_total 15750000 looks rounded", "bytes_code 77000 looks rounded"} <= set(jepa.problems)
    xsa = _claims(corpus_claims, "2026-03-20_11L_EfficientPartialXSA")
    assert xsa.model_bytes == 15827986 and xsa.key_used["model_bytes"] == "bytes_model_int6_zstd"
    assert "bytes_code 65000 looks rounded" in xsa.problems


def test_empty_strings_and_nulls_count_as_missing(corpus_claims):
    c = _claims(corpus_claims, "2026-03-19_SwiGLU")
    assert c.author is None and c.github_id is None and c.val_loss is None
    assert {"author", "github_id", "val_loss"} <= set(c.missing)
    assert (c.hardware, c.key_used["hardware"]) == ("1xRTX5090", "gpu")


def test_non_record_time_fields(corpus_claims):
    c = _claims(corpus_claims, "2026-03-31_LegendreGPT")
    assert (c.train_seconds, c.key_used["train_seconds"]) == (96562.0, "wallclock_seconds")
    assert (c.steps, c.key_used["steps"]) == (60000, "step_stop")
    assert c.pre_quant_val_bpb == 1.2079 and c.track == TRACK_NON_RECORD


# ---------------------------------------------------------------------------------------------
# Synthetic input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,message", [
    (b"", "empty file"),
    (b"   \n", "empty file"),
    (b'{"val_bpb": 1.1, "name": "\xff"}', "not valid UTF-8"),
    (b'{\n  "val_bpb": 1.1,\n  "name": }\n', "not valid JSON: Expecting value at line 3 column 11"),
    (b"[1, 2]", "top level is a JSON list"),
    (b'"text"', "top level is a JSON str"),
    (b"[" * 100_000 + b"]" * 100_000, "nested more than"),
])
def test_unreadable_files_raise_a_clear_error(data, message):
    with pytest.raises(SubmissionJsonError) as info:
        parse_submission_json(data, "submission.json")
    assert message in str(info.value)
    assert "submission.json" in str(info.value)


def test_bom_duplicates_and_nan_are_problems_not_errors():
    c = parse_submission_json(b'\xef\xbb\xbf{"val_bpb": 1.2, "val_bpb": 1.1, "val_loss": NaN}', "s.json")
    assert c.val_bpb == 1.1 and c.val_loss is None
    assert "file starts with a UTF-8 byte-order mark" in c.problems
    assert "duplicate key 'val_bpb' (the last value is used)" in c.problems
    assert "non-standard JSON constant NaN used" in c.problems
    assert "val_loss is nan, not a finite number" in c.problems


def test_strings_booleans_and_odd_types():
    c = _parse({"val_bpb": "1.15", "bytes_total": "15,900,123", "bytes_code": True, "val_loss": [1, 2],
                "seed_results": "none", "compliance": ["x"], "track": "leaderboard"})
    assert c.val_bpb == 1.15 and c.artifact_bytes == 15900123
    assert c.code_bytes is None and c.val_loss is None and c.track is None
    assert "val_bpb is the text '1.15'; read as 1.15" in c.problems
    assert "bytes_code is a boolean, not a number" in c.problems
    assert "seed_results is a JSON str, not an object" in c.problems
    assert "compliance is a JSON list, not an object" in c.problems
    assert "unknown track 'leaderboard'" in c.problems


def test_unknown_keys_are_reported_not_fatal():
    c = _parse({"val_bpb": 1.1, "my_custom_field": 3, "another": {}})
    assert c.unknown_keys == ["my_custom_field", "another"] and c.val_bpb == 1.1


def test_train_time_ms_top_level_and_seed_list_entries():
    c = _parse({"val_bpb": 1.1, "train_time_ms": 599500, "eval_time_ms": 410000,
                "seed_results": [{"seed": 7, "val_bpb": 1.1, "artifact_bytes": 15000001}]})
    assert c.train_seconds == 599.5 and c.key_used["train_seconds"] == "train_time_ms"
    assert c.eval_seconds == 410.0
    assert c.seeds == [7] and c.seed_claims[0].json_path == "seed_results[0]"
    assert c.artifact_bytes == 15000001


def test_headline_not_the_mean_of_the_seeds():
    c = _parse({"val_bpb": 1.1000, "seeds": [1, 2],
                "seed_results": {"1": {"val_bpb": 1.1200}, "2": {"val_bpb": 1.1300}}})
    assert any("is not the mean of the 2 per-seed values" in p for p in c.problems)
    ok = _parse({"val_bpb": 1.125, "seeds": [1, 2],
                 "seed_results": {"1": {"val_bpb": 1.12}, "2": {"val_bpb": 1.13}}})
    assert not any("mean" in p for p in ok.problems)


def test_seeds_without_results_and_mismatched_results():
    c = _parse({"val_bpb": 1.1, "seeds": [1, 2, 2], "seed_results": {"1": {"val_bpb": 1.1}, "3": {"val_bpb": 1.1}}})
    assert "seeds lists the same seed more than once" in c.problems
    assert any("per-seed results cover seeds" in p for p in c.problems)


def test_non_numeric_seed_keys_stay_strings():
    c = _parse({"val_bpb": 1.1, "seed_results": {"run_a": {"val_bpb": 1.1}}})
    assert c.seeds == ["run_a"] and c.seed_claims[0].seed == "run_a"


@pytest.mark.parametrize("raw,expected", [
    ("10min_16mb", TRACK_10MIN), ("track_10min_16mb", TRACK_10MIN), ("10min-16mb", TRACK_10MIN),
    ("non-record-16mb", TRACK_NON_RECORD), ("non_record_16mb", TRACK_NON_RECORD),
    ("non-record-unlimited-compute-16mb", TRACK_NON_RECORD), ("track_non_record_16mb", TRACK_NON_RECORD),
    ("Non-Record", TRACK_NON_RECORD), ("16mb", None), ("", None),
])
def test_normalise_track(raw, expected):
    assert normalise_track(raw) == expected


def test_known_keys_cover_the_documented_optional_fields():
    assert {"eval_full_val_verified", "status", "val_bpb_retracted", "seed_results_pre_fix", "welch_df"} <= KNOWN_KEYS

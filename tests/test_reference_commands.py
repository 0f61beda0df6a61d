"""The `bpb` and `demo` commands, driven through click's CliRunner."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")

from click.testing import CliRunner

from pgolf_audit.reference_impl.byte_lut import build_byte_lut
from pgolf_audit.reference_impl.commands import bpb_command, demo_command
from pgolf_audit.reference_impl.dataset import build_demo_dataset
from pgolf_audit.reference_impl.shards import load_tokens, write_shard


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("bpb"), vocab_size=384, val_documents=40,
                              train_documents=120, tokenizer_documents=120)


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def bpb(data, *extra):
    return invoke(bpb_command, "--tokenizer", data.tokenizer_path, "--val", data.val_pattern, *extra)


def field(output: str, name: str) -> str:
    return re.search(rf"^{name}: (\S+)", output, re.M).group(1)


def test_bpb_agrees_on_a_correct_table(data):
    result = bpb(data)
    assert result.exit_code == 0, result.output
    assert field(result.output, "bytes_lut") == field(result.output, "bytes_exact")
    assert int(field(result.output, "tokens").replace(",", "")) == data.val_tokens
    assert "tokens_per_byte: " in result.output and "val_bpb/val_loss on this set" in result.output
    assert "matches the exact decoded bytes" in result.output


def test_bpb_json(data):
    result = bpb(data, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["agrees"] and doc["bytes_lut"] == doc["bytes_exact"] > 0
    assert doc["tokens"] == data.val_tokens and doc["documents"] == data.val_documents
    assert doc["tokens_per_byte"] == pytest.approx(doc["tokens"] / doc["bytes_exact"])
    assert doc["diagnoses"] == [] and doc["reference"] is None


def save_lut(path, lut, base_bytes=None):
    np.savez(path, base_bytes=lut.base_bytes if base_bytes is None else base_bytes,
             has_leading_space=lut.has_leading_space, is_boundary_token=lut.is_boundary)
    return path


def test_bpb_names_the_double_counted_leading_space(data, tmp_path):
    sp = spm.SentencePieceProcessor(model_file=str(data.tokenizer_path))
    lut = build_byte_lut(sp)
    buggy = save_lut(tmp_path / "double.npz", lut, lut.base_bytes + lut.has_leading_space)
    result = bpb(data, "--lut", buggy)
    assert result.exit_code == 1, result.output
    assert "DISAGREE" in result.output and "[leading-space-double-count]" in result.output
    assert "leading-space byte counted twice" in result.output and "▁the" in result.output
    doc = json.loads(bpb(data, "--lut", buggy, "--format", "json").output)
    assert doc["diagnoses"][0]["kind"] == "leading-space-double-count"
    assert doc["bytes_lut"] > doc["bytes_exact"]


def test_bpb_names_byte_fallback_pieces(data, tmp_path):
    sp = spm.SentencePieceProcessor(model_file=str(data.tokenizer_path))
    lut = build_byte_lut(sp)
    base = lut.base_bytes.copy()
    base[[i for i in range(sp.get_piece_size()) if sp.is_byte(i)]] = 3
    result = bpb(data, "--lut", save_lut(tmp_path / "bytes3.npz", lut, base))
    assert result.exit_code == 1, result.output
    assert "[byte-fallback-overcount]" in result.output and "counted as 3 bytes" in result.output
    assert "<0x" in result.output


def test_bpb_detects_a_shifted_sidecar(data, tmp_path):
    sp = spm.SentencePieceProcessor(model_file=str(data.tokenizer_path))
    tokens = load_tokens(data.val_pattern)
    counts = build_byte_lut(sp).stream_bytes(tokens)
    write_shard(tmp_path / "fineweb_val_bytes_000000.bin", counts)
    good = bpb(data, "--sidecar", tmp_path / "fineweb_val_bytes_*.bin")
    assert good.exit_code == 0, good.output
    write_shard(tmp_path / "fineweb_val_bytes_000000.bin", np.roll(counts, 1))
    shifted = bpb(data, "--sidecar", tmp_path / "fineweb_val_bytes_*.bin")
    assert shifted.exit_code == 1 and "[shifted-partition]" in shifted.output
    write_shard(tmp_path / "fineweb_val_bytes_000000.bin", counts[:-5])
    short = bpb(data, "--sidecar", tmp_path / "fineweb_val_bytes_*.bin")
    assert short.exit_code == 2 and "do not match" in short.output


@pytest.mark.parametrize("problem", ["missing_tokenizer", "not_a_model", "no_shards", "wrong_magic", "truncated",
                                     "vocab_mismatch", "bad_lut"])
def test_bpb_bad_input_is_a_clear_error(data, tmp_path, problem):
    tokenizer, val, extra = data.tokenizer_path, data.val_pattern, []
    shard = tmp_path / "fineweb_val_000000.bin"
    named = None
    if problem == "missing_tokenizer":
        tokenizer = named = tmp_path / "nope.model"
    elif problem == "not_a_model":
        tokenizer = named = tmp_path / "fake.model"
        tokenizer.write_text("not a model")
    elif problem == "no_shards":
        val = named = str(tmp_path / "fineweb_val_*.bin")
    elif problem == "wrong_magic":
        shard.write_bytes(b"\x01" * 2048)
        val, named = str(tmp_path / "fineweb_val_*.bin"), shard
    elif problem == "truncated":
        write_shard(shard, np.arange(100))
        shard.write_bytes(shard.read_bytes()[:-7])
        val, named = str(tmp_path / "fineweb_val_*.bin"), shard
    elif problem == "vocab_mismatch":
        write_shard(shard, [1, 5, 4000, 7])
        val, named = str(tmp_path / "fineweb_val_*.bin"), shard
    elif problem == "bad_lut":
        named = tmp_path / "lut.npz"
        np.savez(named, something=np.zeros(3))
        extra = ["--lut", named]
    result = invoke(bpb_command, "--tokenizer", tokenizer, "--val", val, *extra)
    assert result.exit_code == 2, result.output
    assert str(named) in result.output and result.output.startswith("Error: ")
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    if problem == "vocab_mismatch":
        assert "4000" in result.output and str(data.tokenizer_path) in result.output


# --- the demo, end to end, with the smallest settings --------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = invoke(demo_command, "--out", out, "--preset", "smoke", "--date", "2026-05-01")
    return out, result


def test_demo_writes_a_complete_record(demo):
    out, result = demo
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    record = out / "records" / "track_non_record_16mb" / "2026-05-01_ReferenceDemo"
    names = {p.name for p in record.iterdir()}
    assert {"README.md", "submission.json", "train_gpt.py", "train_seed1337.log", "train_seed42.log",
            "train_seed2025.log", "final_model_seed42.int8.ptz"} <= names
    assert "logs" not in names
    assert (out / "data" / "tokenizers" / "demo_sp384_bpe.model").is_file()
    assert list((out / "data" / "datasets" / "demo_sp384").glob("fineweb_val_*.bin"))
    submission = json.loads((record / "submission.json").read_text())
    assert submission["track"] == "non_record_16mb" and submission["seeds"] == [1337, 42, 2025]
    for seed, claims in submission["seed_results"].items():
        log = (record / f"train_seed{seed}.log").read_text()
        assert f"final_int8_zstd_roundtrip_exact val_loss:{claims['val_loss']:.8f} val_bpb:{claims['val_bpb']:.8f}" in log
        assert f"Total submission size int8+zstd: {claims['artifact_bytes']} bytes" in log
        assert "../../../data/datasets/demo_sp384" in log  # relative paths, no local absolute ones
    assert submission["bytes_total"] == max(c["artifact_bytes"] for c in submission["seed_results"].values())
    assert submission["bytes_code"] == (record / "train_gpt.py").stat().st_size
    readme = (record / "README.md").read_text()
    assert "identical" in readme and f"{submission['val_bpb']:.4f}" in readme
    assert "record: " in result.output and "demo finished in" in result.output


def test_demo_is_deterministic(demo, tmp_path):
    out, _ = demo
    again = invoke(demo_command, "--out", tmp_path, "--preset", "smoke", "--date", "2026-05-01", "--seeds", "42",
                   "--no-audit")
    assert again.exit_code == 0, again.output
    first = json.loads((out / "records/track_non_record_16mb/2026-05-01_ReferenceDemo/submission.json").read_text())
    second = json.loads((tmp_path / "records/track_non_record_16mb/2026-05-01_ReferenceDemo/submission.json").read_text())
    assert second["seed_results"]["42"]["val_bpb"] == first["seed_results"]["42"]["val_bpb"]
    assert second["seed_results"]["42"]["artifact_bytes"] == first["seed_results"]["42"]["artifact_bytes"]


def test_demo_audit_passes(demo):
    pytest.importorskip("pgolf_audit.audit", reason="the static audit is not importable in this checkout")
    _, result = demo
    assert "audit verdict: PASS" in result.output, result.output
    assert result.exit_code == 0


def test_demo_bad_options():
    assert invoke(demo_command, "--out", "/tmp/x", "--seeds", "a,b").exit_code == 2
    assert invoke(demo_command, "--out", "/tmp/x", "--date", "May 1").exit_code == 2


def test_bpb_compares_with_the_challenge_reference_for_a_challenge_tokenizer(tmp_path):
    # A tokenizer under the challenge's file name gets the corpus reference ratio printed beside it.
    data = build_demo_dataset(tmp_path, vocab_size=1024, val_documents=10, train_documents=300,
                              tokenizer_documents=300)
    if data.vocab_size != 1024:
        pytest.skip("the generated corpus did not fill 1024 pieces")
    renamed = data.tokenizer_path.with_name("fineweb_1024_bpe.model")
    data.tokenizer_path.rename(renamed)
    result = invoke(bpb_command, "--tokenizer", renamed, "--val", data.val_pattern, "--format", "json")
    assert result.exit_code == 0, result.output
    reference = json.loads(result.output)["reference"]
    assert reference["tokenizer"] == "sp1024" and reference["reference_ratio"] == pytest.approx(0.592256, abs=1e-5)


def test_bpb_scored_set_for_a_sequence_length(data):
    doc = json.loads(bpb(data, "--seq-len", "64", "--format", "json").output)
    scored = doc["scored_set"]
    assert scored["scored_tokens"] == ((data.val_tokens - 1) // 64) * 64
    assert scored["bpb_per_loss_ratio"] == pytest.approx(doc["bpb_per_loss_ratio"], rel=0.02)
    text = bpb(data, "--seq-len", "64").output
    assert "challenge scored set (seq_len 64)" in text

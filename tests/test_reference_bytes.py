"""Byte accounting: the LUT equals exact decoded bytes, and every known bug family is detected."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

spm = pytest.importorskip("sentencepiece")

from pgolf_audit.reference_impl.byte_accounting import check_lut, compare_accounting, decoded_bytes
from pgolf_audit.reference_impl.byte_lut import ByteLUT, build_byte_lut
from pgolf_audit.reference_impl.dataset import encode_documents, generate_documents, train_tokenizer
from pgolf_audit.reference_impl.metric import bits_per_byte, bpb_per_loss_ratio, val_loss_and_bpb

# Texts that stress the accounting: leading, trailing and repeated spaces, tabs, newlines,
# multi-byte characters, characters rare enough to fall back to bytes, and a literal "▁".
TRICKY = [
    " leading space and  double  space ",
    "tab\tseparated\tand\nnew lines\n\nagain",
    "naïve café Zoë Ångström → 東京 数据 🙂🚀 ½ € ©",
    "x",
    "digits 1234567890 and 3.14159",
    "a literal ▁ piece marker",
    "",
    "🙂",
    "   ",
]


@pytest.fixture(scope="module")
def texts():
    return generate_documents(seed=7, count=150) + TRICKY


@pytest.fixture(scope="module")
def sp_space(tmp_path_factory, texts):
    """A byte-fallback BPE tokenizer with a standalone ▁ (the normal case)."""
    path = train_tokenizer(generate_documents(seed=3, count=300), 400,
                           tmp_path_factory.mktemp("tok") / "space.model", character_coverage=0.995)
    return spm.SentencePieceProcessor(model_file=str(path))


@pytest.fixture(scope="module")
def sp_no_space(tmp_path_factory):
    """A byte-fallback tokenizer with no ▁ piece at all: trained on text without spaces and
    without the dummy prefix, so every space falls back to the bytes E2 96 81."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = ["".join(rng.choice(letters[: rng.randint(5, 26)]) for _ in range(rng.randint(10, 60)))
             for _ in range(2000)]
    path = train_tokenizer(lines, 300, tmp_path_factory.mktemp("tok") / "nospace.model", add_dummy_prefix=False)
    return spm.SentencePieceProcessor(model_file=str(path))


def stream(sp, texts):
    return encode_documents(sp, texts).astype(np.int64)


def test_tokenizers_have_the_intended_pieces(sp_space, sp_no_space):
    assert sp_space.id_to_piece(sp_space.piece_to_id("▁")) == "▁"
    assert sp_no_space.is_unknown(sp_no_space.piece_to_id("▁"))
    ids = sp_space.encode("🙂")
    assert all(sp_space.is_byte(i) for i in ids[1:]) and len(ids) >= 4  # byte fallback in use


def test_lut_equals_exact_bytes(sp_space, texts):
    tokens = stream(sp_space, texts)
    report = check_lut(sp_space, tokens, build_byte_lut(sp_space))
    assert report.agrees, report.to_dict()
    assert report.documents == len(texts)
    assert report.bytes_exact == sum(decoded_bytes(sp_space.decode(sp_space.encode(t))) for t in texts)
    assert report.diagnoses == [] and report.rows == []


def test_lut_equals_exact_per_document(sp_space, texts):
    lut = build_byte_lut(sp_space)
    for text in texts:
        ids = np.array([sp_space.bos_id()] + sp_space.encode(text))
        assert int(lut.stream_bytes(ids).sum()) == decoded_bytes(sp_space.decode(ids.tolist())), text


def test_lut_matches_the_challenge_rules(sp_space):
    lut = build_byte_lut(sp_space)
    bos, unk, eos = sp_space.bos_id(), sp_space.unk_id(), sp_space.eos_id()
    for control in (bos, unk, eos):
        assert lut.is_boundary[control] and lut.base_bytes[control] == 0
    byte_ids = [i for i in range(sp_space.get_piece_size()) if sp_space.is_byte(i)]
    assert len(byte_ids) == 256 and all(lut.base_bytes[i] == 1 for i in byte_ids)
    the = sp_space.piece_to_id("▁the")
    assert lut.has_leading_space[the] and lut.base_bytes[the] == 3
    # The leading space counts after an ordinary token, not after BOS.
    assert lut.token_bytes([bos], [the]).tolist() == [3]
    assert lut.token_bytes([the], [the]).tolist() == [4]


def test_padded_table_marks_unused_ids_as_boundaries(sp_space):
    lut = build_byte_lut(sp_space, vocab_size=sp_space.get_piece_size() + 10)
    assert lut.table_size == sp_space.get_piece_size() + 10
    assert lut.is_boundary[-10:].all() and not lut.base_bytes[-10:].any()


# --- known bug families, reproduced as buggy tables and detected ---------------------------

def double_count_lut(lut: ByteLUT) -> ByteLUT:
    """The #1719 family: the +1 for the leading space put into base_bytes, then added again."""
    return ByteLUT(lut.base_bytes + lut.has_leading_space, lut.has_leading_space, lut.is_boundary)


def byte_fallback_as_text_lut(sp, lut: ByteLUT, width: int) -> ByteLUT:
    """The Scylla family: byte pieces counted as len('\\ufffd'.encode()) = 3 (or their text, 6)."""
    base = lut.base_bytes.copy()
    for i in range(sp.get_piece_size()):
        if sp.is_byte(i):
            base[i] = width
    return ByteLUT(base, lut.has_leading_space, lut.is_boundary)


def test_double_count_is_detected(sp_space, texts):
    tokens = stream(sp_space, texts)
    report = check_lut(sp_space, tokens, double_count_lut(build_byte_lut(sp_space)))
    assert not report.agrees
    kinds = [d.kind for d in report.diagnoses]
    assert kinds[0] == "leading-space-double-count", report.to_dict()["diagnoses"]
    assert "▁the" in report.diagnoses[0].pieces
    assert 0.10 < report.relative_difference < 0.35  # ~17% on FineWeb; these short words inflate more
    assert all(r.delta == r.occurrences for r in report.rows)


@pytest.mark.parametrize("width", [3, 6])
def test_byte_fallback_as_text_length_is_detected(sp_space, texts, width):
    tokens = stream(sp_space, texts)
    report = check_lut(sp_space, tokens, byte_fallback_as_text_lut(sp_space, build_byte_lut(sp_space), width))
    assert not report.agrees
    diagnosis = next(d for d in report.diagnoses if d.kind == "byte-fallback-overcount")
    assert f"counted as {width} bytes" in diagnosis.message
    assert any(piece.startswith("<0xF0>") for piece in diagnosis.pieces)  # the emoji's bytes
    assert all(r.delta > 0 for r in report.rows)


def test_shifted_partition_is_detected(sp_space, texts):
    tokens = stream(sp_space, texts)
    correct = build_byte_lut(sp_space).stream_bytes(tokens)
    shifted = np.roll(correct, 1)  # each token charged the bytes of the token before it
    report = compare_accounting(sp_space, tokens, shifted, source="sidecar")
    assert abs(report.bytes_accounted - report.bytes_exact) <= int(correct.max())  # totals nearly agree
    assert report.mismatched_documents > 0
    assert report.diagnoses[0].kind == "shifted-partition"
    assert "+1 position" in report.diagnoses[0].message
    assert report.rows  # the pieces are still named


def test_control_token_bytes_are_detected(sp_space, texts):
    lut = build_byte_lut(sp_space)
    base = lut.base_bytes.copy()
    base[sp_space.bos_id()] = 1
    report = check_lut(sp_space, stream(sp_space, texts), ByteLUT(base, lut.has_leading_space, lut.is_boundary))
    diagnosis = next(d for d in report.diagnoses if d.kind == "control-token-bytes")
    assert "<s>" in diagnosis.pieces


def test_tokenizer_without_space_piece_is_explained(sp_no_space):
    texts = ["ab cd  ef", "abc def ghi jkl", "zz"]
    report = check_lut(sp_no_space, stream(sp_no_space, texts), build_byte_lut(sp_no_space))
    assert not report.agrees
    assert report.bytes_accounted - report.bytes_exact == 2 * 5  # five spaces, 3 bytes for 1 each
    diagnosis = report.diagnoses[0]
    assert diagnosis.kind == "space-byte-fallback"
    assert diagnosis.pieces == ("<0xE2> <0x96> <0x81>",)
    assert any("no standalone ▁" in note for note in report.notes)


def test_metric_helpers():
    loss, bpb = val_loss_and_bpb(sum_nll_nats=200.0, tokens=100, num_bytes=250)
    assert loss == pytest.approx(2.0)
    assert bpb == pytest.approx(200.0 / math.log(2) / 250)
    assert bits_per_byte(200.0, 100, 250) == pytest.approx(bpb)
    assert bpb / loss == pytest.approx(bpb_per_loss_ratio(100, 250))
    with pytest.raises(ValueError):
        val_loss_and_bpb(1.0, 0, 10)

"""Reference evaluator and score-first TTT: exactness, coverage, distributed determinism."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")

import torch.multiprocessing as mp

from pgolf_audit.reference_impl.byte_lut import build_byte_lut
from pgolf_audit.reference_impl.dataset import encode_documents, generate_documents, train_tokenizer
from pgolf_audit.reference_impl.evaluator import evaluate, make_windows, scored_target_count
from pgolf_audit.reference_impl.model import GPT, GPTConfig
from pgolf_audit.reference_impl.ttt import (
    ScoreFirstViolation,
    TTTEvent,
    check_score_first,
    score_first_ttt,
)

torch.set_num_threads(1)
SEQ_LEN = 32


@pytest.fixture(scope="module")
def sp(tmp_path_factory):
    path = train_tokenizer(generate_documents(seed=11, count=200), 384,
                           tmp_path_factory.mktemp("tok") / "eval.model", character_coverage=0.995)
    return spm.SentencePieceProcessor(model_file=str(path))


@pytest.fixture(scope="module")
def tokens(sp):
    return encode_documents(sp, generate_documents(seed=12, count=4)).astype(np.int64)[:330]


def tiny_model(vocab_size: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2,
                          max_seq_len=64))
    # Random residual weights, so the test exercises every layer (they start at zero).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("num_targets, seq_len, stride", [
    (96, 32, 32), (96, 32, 8), (100, 32, 7), (32, 32, 1), (33, 32, 32), (257, 64, 48), (64, 16, 16),
])
def test_windows_score_every_target_exactly_once(num_targets, seq_len, stride):
    windows = make_windows(num_targets, seq_len, stride)
    counts = np.zeros(num_targets + 1, dtype=int)
    for i, w in enumerate(windows):
        assert w.length == seq_len and w.start >= 0 and w.end_target <= num_targets + 1
        counts[w.first_target:w.end_target] += 1
        if i > 0:
            assert w.score_from >= seq_len - stride  # at least seq_len - stride tokens of context
    assert counts[0] == 0 and (counts[1:] == 1).all()


def test_scored_target_count_matches_the_challenge():
    assert scored_target_count(62021633 + 500, 1024) == 62021632
    with pytest.raises(ValueError):
        scored_target_count(10, 32)


def naive_float64(model: GPT, tokens: np.ndarray, sp, seq_len: int, stride: int) -> tuple[float, float]:
    """One forward pass per target, in float64, over exactly the context the challenge allows;
    bytes counted from the piece text, not from the byte table."""
    model = copy.deepcopy(model).double().eval()
    num_targets = ((len(tokens) - 1) // seq_len) * seq_len
    total_nll, total_bytes = 0.0, 0
    for j in range(1, num_targets + 1):
        # The window that scores target j ends at the first L + k*stride >= j (clipped).
        end = seq_len
        while end < j:
            end += stride
        start = min(end, num_targets) - seq_len
        context = torch.tensor(tokens[start:j]).unsqueeze(0)
        with torch.no_grad():
            logits = model(context)[0, -1].double()
        log_probs = logits - torch.logsumexp(logits, dim=0)
        total_nll -= float(log_probs[int(tokens[j])])
        total_bytes += piece_bytes(sp, int(tokens[j - 1]), int(tokens[j]))
    return total_nll / num_targets, total_nll / math.log(2) / total_bytes


def piece_bytes(sp, prev: int, target: int) -> int:
    if sp.is_control(target) or sp.is_unknown(target):
        return 0
    if sp.is_byte(target):
        return 1
    piece = sp.id_to_piece(target)
    if piece.startswith("▁"):
        return len(piece[1:].encode()) + (0 if sp.is_control(prev) else 1)
    return len(piece.encode())


@pytest.mark.parametrize("stride", [SEQ_LEN, 8])
def test_evaluator_matches_naive_float64_loop(sp, tokens, stride):
    model = tiny_model(sp.get_piece_size())
    result = evaluate(model, tokens, build_byte_lut(sp), seq_len=SEQ_LEN, stride=stride, batch_size=3)
    loss, bpb = naive_float64(model, tokens, sp, SEQ_LEN, stride)
    assert result.tokens == ((len(tokens) - 1) // SEQ_LEN) * SEQ_LEN
    assert result.val_loss == pytest.approx(loss, rel=1e-5)
    assert result.val_bpb == pytest.approx(bpb, rel=1e-5)


def test_sliding_and_plain_share_the_token_and_byte_set(sp, tokens):
    model = tiny_model(sp.get_piece_size())
    lut = build_byte_lut(sp)
    plain = evaluate(model, tokens, lut, seq_len=SEQ_LEN)
    sliding = evaluate(model, tokens, lut, seq_len=SEQ_LEN, stride=4)
    assert (plain.tokens, plain.bytes) == (sliding.tokens, sliding.bytes)
    assert plain.val_bpb / plain.val_loss == pytest.approx(sliding.val_bpb / sliding.val_loss, rel=1e-12)
    assert sliding.val_loss < plain.val_loss + 0.5  # more context does not make it much worse


def test_ttt_without_updates_equals_plain_evaluation(sp, tokens):
    model = tiny_model(sp.get_piece_size())
    lut = build_byte_lut(sp)
    plain = evaluate(model, tokens, lut, seq_len=SEQ_LEN)
    frozen = score_first_ttt(copy.deepcopy(model), tokens, lut, seq_len=SEQ_LEN, chunk_tokens=2 * SEQ_LEN,
                             make_optimizer=lambda ps: torch.optim.SGD(ps, lr=0.0))
    assert frozen.result.val_loss == pytest.approx(plain.val_loss, rel=1e-9)
    assert (frozen.result.tokens, frozen.result.bytes) == (plain.tokens, plain.bytes)


def test_ttt_is_score_first_and_adapts(sp, tokens):
    model = tiny_model(sp.get_piece_size())
    lut = build_byte_lut(sp)
    plain = evaluate(model, tokens, lut, seq_len=SEQ_LEN)
    adapted = score_first_ttt(copy.deepcopy(model), tokens, lut, seq_len=SEQ_LEN, chunk_tokens=2 * SEQ_LEN,
                              epochs=2, make_optimizer=lambda ps: torch.optim.SGD(ps, lr=0.05))
    check_score_first(adapted.trace)
    assert adapted.chunks == 5
    kinds = [e.kind for e in adapted.trace]
    assert kinds == ["score", "adapt"] * 4 + ["score"]  # the last chunk is never trained on
    assert adapted.result.val_loss != pytest.approx(plain.val_loss, rel=1e-6)
    # The first chunk is scored before any update, so it equals the plain score of those windows.
    assert adapted.trace[0] == TTTEvent("score", 1, 2 * SEQ_LEN + 1)


def test_check_score_first_rejects_illegal_orders():
    with pytest.raises(ScoreFirstViolation, match="before scoring"):
        check_score_first([TTTEvent("adapt", 1, 65), TTTEvent("score", 1, 65)])
    with pytest.raises(ScoreFirstViolation, match="scored twice"):
        check_score_first([TTTEvent("score", 1, 65), TTTEvent("score", 33, 97)])
    with pytest.raises(ScoreFirstViolation, match="after adapting"):
        check_score_first([TTTEvent("score", 1, 65), TTTEvent("adapt", 1, 65), TTTEvent("score", 33, 97)])
    with pytest.raises(ScoreFirstViolation):
        check_score_first([TTTEvent("score", 1, 33), TTTEvent("adapt", 1, 65)])
    check_score_first([TTTEvent("score", 1, 65), TTTEvent("adapt", 1, 65), TTTEvent("score", 65, 129)])


def _distributed_worker(rank, world_size, init_file, tokens, vocab_size, lut_arrays, out):
    import torch.distributed as dist

    from pgolf_audit.reference_impl.byte_lut import ByteLUT

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        lut = ByteLUT(*lut_arrays)
        model = tiny_model(vocab_size)
        plain = evaluate(model, tokens, lut, seq_len=SEQ_LEN, stride=8, rank=rank, world_size=world_size)
        ttt = score_first_ttt(model, tokens, lut, seq_len=SEQ_LEN, chunk_tokens=2 * SEQ_LEN,
                              make_optimizer=lambda ps: torch.optim.SGD(ps, lr=0.05), rank=rank,
                              world_size=world_size, train_batch_size=1)
        checksum = float(sum(p.double().sum() for p in model.parameters()))
        out[rank] = (plain.sum_nll, plain.tokens, plain.bytes, ttt.result.sum_nll, checksum)
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_and_each_other(sp, tokens, tmp_path):
    lut = build_byte_lut(sp)
    single = evaluate(tiny_model(sp.get_piece_size()), tokens, lut, seq_len=SEQ_LEN, stride=8)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_distributed_worker, nprocs=2, join=True,
             args=(2, str(tmp_path / "init"), tokens, sp.get_piece_size(),
                   (lut.base_bytes, lut.has_leading_space, lut.is_boundary), out))
    rank0, rank1 = out[0], out[1]
    assert rank0 == rank1  # bitwise identical on every rank, TTT weights included
    assert (rank0[1], rank0[2]) == (single.tokens, single.bytes)
    assert rank0[0] == pytest.approx(single.sum_nll, rel=1e-12)


def test_bf16_autocast_path_runs(sp, tokens):
    # The CUDA path trains and scores under bf16 autocast; CPU autocast exercises the same casts.
    model = tiny_model(sp.get_piece_size())
    lut = build_byte_lut(sp)
    exact = evaluate(model, tokens, lut, seq_len=SEQ_LEN)
    mixed = evaluate(model, tokens, lut, seq_len=SEQ_LEN, autocast_dtype=torch.bfloat16)
    assert mixed.val_loss == pytest.approx(exact.val_loss, rel=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.as_tensor(tokens[:SEQ_LEN]).unsqueeze(0))
    loss = torch.nn.functional.cross_entropy(logits.float()[0, :-1], torch.as_tensor(tokens[1:SEQ_LEN]))
    loss.backward()
    assert logits.dtype == torch.float32 and all(p.grad is not None for p in model.parameters())

"""A legal, score-first test-time-training (TTT) driver: the reference the rules point to.

The validation targets are cut into consecutive chunks. For each chunk, in order:

1. score it with the current weights, under ``torch.no_grad()``; its NLL and bytes are added
   to the totals and never touched again;
2. then, unless it is the last chunk, adapt the model on that chunk's targets (any number of
   epochs), which have all been scored already.

So the score of every token is fixed before any update that has seen it (rules R-TTT-SCORE-FIRST,
R-EVAL-C3), each token is scored once (R-EVAL-C4), and no update ever uses an unscored token.
The driver records what it did as a trace of ("score" | "adapt", first_target, end_target)
events, and ``check_score_first`` verifies a trace, so a rerun can prove the order.

With several processes, each rank scores a block of the chunk's windows; for the adaptation
each rank takes a block of the chunk's training sequences, gradients are averaged across
ranks, and every rank takes the same optimizer step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .byte_lut import ByteLUT
from .evaluator import (
    EvalResult,
    Window,
    _autocast,
    as_token_tensor,
    lut_tensors,
    make_windows,
    reduce_in_rank_order,
    score_windows,
    scored_target_count,
    split_for_rank,
)
from .metric import val_loss_and_bpb


@dataclass(frozen=True)
class TTTEvent:
    kind: str  # "score" or "adapt"
    first_target: int  # targets [first_target, end_target) of the validation stream
    end_target: int


@dataclass
class TTTResult:
    result: EvalResult
    chunks: int
    trace: list[TTTEvent] = field(default_factory=list)


class ScoreFirstViolation(AssertionError):
    pass


def check_score_first(trace: list[TTTEvent]) -> None:
    """Raise ScoreFirstViolation unless every adapted target was scored before, and no scored
    target was adapted on before it was scored or scored twice."""
    scored: list[tuple[int, int]] = []
    adapted_until = 0
    for event in trace:
        if event.kind == "score":
            if event.first_target < adapted_until:
                raise ScoreFirstViolation(f"targets from {event.first_target} scored after adapting up to {adapted_until}")
            for first, end in scored:
                if event.first_target < end and first < event.end_target:
                    raise ScoreFirstViolation(f"targets {event.first_target}..{event.end_target} scored twice")
            scored.append((event.first_target, event.end_target))
        elif event.kind == "adapt":
            covered = sum(min(end, event.end_target) - max(first, event.first_target)
                          for first, end in scored if first < event.end_target and event.first_target < end)
            if covered != event.end_target - event.first_target:
                raise ScoreFirstViolation(f"adapted on targets {event.first_target}..{event.end_target} before scoring them")
            adapted_until = max(adapted_until, event.end_target)
        else:
            raise ValueError(f"unknown trace event {event.kind!r}")


def chunk_windows(windows: list[Window], chunk_tokens: int) -> list[list[Window]]:
    """Group windows into chunks of about chunk_tokens scored targets (whole windows)."""
    chunks: list[list[Window]] = [[]]
    count = 0
    for window in windows:
        if count >= chunk_tokens:
            chunks.append([])
            count = 0
        chunks[-1].append(window)
        count += window.length - window.score_from
    return chunks


def average_gradients(params: list[torch.Tensor], world_size: int) -> None:
    if world_size == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world_size)


def score_first_ttt(model: torch.nn.Module, tokens, lut: ByteLUT, *, seq_len: int, chunk_tokens: int,
                    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None = None,
                    epochs: int = 1, stride: int | None = None, batch_size: int = 8, train_batch_size: int = 4,
                    device: torch.device | str | None = None, autocast_dtype: torch.dtype | None = None,
                    rank: int = 0, world_size: int = 1) -> TTTResult:
    """Score-first chunked TTT over a validation stream; the model is adapted in place.

    ``make_optimizer(params)`` builds the optimizer for the adaptation (default: SGD, lr 1e-3,
    momentum 0.9). Adaptation sequences are seq_len long and lie wholly inside already-scored
    targets of the current chunk."""
    started = time.perf_counter()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    tokens = as_token_tensor(tokens)
    num_targets = scored_target_count(tokens.numel(), seq_len)
    chunks = chunk_windows(make_windows(num_targets, seq_len, stride), max(chunk_tokens, 1))
    luts = lut_tensors(lut, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (make_optimizer or (lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9)))(params)
    trace: list[TTTEvent] = []
    totals = [0.0, 0.0, 0.0]
    for index, chunk in enumerate(chunks):
        first_target, end_target = chunk[0].first_target, chunk[-1].end_target
        # 1. Score the chunk with the current weights; these numbers are final.
        model.eval()
        with torch.no_grad():
            local = score_windows(model, tokens, split_for_rank(chunk, rank, world_size), luts, device,
                                  batch_size, autocast_dtype)
        for k, value in enumerate(reduce_in_rank_order(list(map(float, local)), device)):
            totals[k] += value
        trace.append(TTTEvent("score", first_target, end_target))
        if index == len(chunks) - 1:
            break  # the last chunk is never trained on: nothing is left to score with it
        # 2. Adapt on the chunk just scored: sequences whose targets all lie in it.
        starts = list(range(first_target - 1, end_target - seq_len, seq_len))
        if not starts:
            continue
        model.train()
        for _ in range(epochs):
            mine = split_for_rank(starts, rank, world_size)
            # Every rank takes the same number of steps (each step averages gradients across ranks).
            largest_share = max(len(split_for_rank(starts, r, world_size)) for r in range(world_size))
            steps = -(-largest_share // train_batch_size)
            for step in range(steps):
                batch = mine[step * train_batch_size:(step + 1) * train_batch_size]
                optimizer.zero_grad(set_to_none=True)
                if batch:
                    rows = torch.stack([tokens[s:s + seq_len + 1] for s in batch]).to(device)
                    with _autocast(device, autocast_dtype):
                        logits = model(rows[:, :-1])
                    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
                    (loss * len(batch) / train_batch_size).backward()
                average_gradients(params, world_size)
                optimizer.step()
        trace.append(TTTEvent("adapt", starts[0] + 1, starts[-1] + seq_len + 1))
    model.eval()
    sum_nll, count, num_bytes = totals
    val_loss, val_bpb = val_loss_and_bpb(sum_nll, int(count), int(num_bytes))
    result = EvalResult(val_loss, val_bpb, sum_nll, int(count), int(num_bytes), 1000.0 * (time.perf_counter() - started))
    return TTTResult(result, len(chunks), trace)

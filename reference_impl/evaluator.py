"""Reference evaluation: val_loss and val_bpb exactly as the challenge defines them.

The validation stream of N tokens is scored as next-token prediction: target j (1 <= j < N)
is predicted from the tokens before it. Like the challenge, the scored targets are the first
``((N - 1) // seq_len) * seq_len`` (a whole number of windows); both modes below score exactly
that set, so their bpb/loss ratios are identical.

- Non-overlapping windows (stride == seq_len): window k reads tokens [k*L, (k+1)*L) and scores
  all L of its targets.
- Sliding windows (stride < seq_len): every window is L tokens long; the first scores all of
  its targets, each later one only the targets past the previous window's end, so every target
  is scored exactly once, with at least L - stride tokens of context.

Each target t with previous token p is charged ``lut.base_bytes[t] + (lut.has_leading_space[t]
and not lut.is_boundary[p])`` bytes. NLL is summed in float64 per batch. With several processes
(torch.distributed) each rank scores a contiguous block of windows, and the per-rank sums are
all-gathered and added in rank order, so every rank gets the same, deterministic result.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .byte_lut import ByteLUT
from .metric import val_loss_and_bpb


@dataclass(frozen=True)
class Window:
    """Inputs tokens[start : start + length]; targets tokens[start + 1 : start + length + 1];
    the targets at offsets [score_from, length) are scored in this window."""

    start: int
    length: int
    score_from: int

    @property
    def first_target(self) -> int:
        return self.start + 1 + self.score_from

    @property
    def end_target(self) -> int:  # one past the last scored target
        return self.start + 1 + self.length


@dataclass(frozen=True)
class EvalResult:
    val_loss: float
    val_bpb: float
    sum_nll: float
    tokens: int
    bytes: int
    eval_time_ms: float = 0.0


def scored_target_count(num_tokens: int, seq_len: int) -> int:
    """Targets the challenge scores: a whole number of seq_len windows."""
    if num_tokens < 2:
        raise ValueError(f"validation stream has {num_tokens} tokens; at least 2 are needed")
    usable = ((num_tokens - 1) // seq_len) * seq_len
    if usable == 0:
        raise ValueError(f"validation stream of {num_tokens} tokens is shorter than one window of {seq_len}")
    return usable


def make_windows(num_targets: int, seq_len: int, stride: int | None = None) -> list[Window]:
    """Windows covering targets 1..num_targets, each scored exactly once (see module doc)."""
    stride = seq_len if stride is None else stride
    if not 0 < stride <= seq_len:
        raise ValueError(f"stride must be in 1..seq_len ({seq_len}), got {stride}")
    if num_targets < seq_len:
        raise ValueError(f"{num_targets} targets are fewer than one window of {seq_len}")
    windows = []
    scored_until = 0  # targets 1..scored_until are done
    end = seq_len
    while scored_until < num_targets:
        end = min(end, num_targets)
        start = end - seq_len
        windows.append(Window(start, seq_len, scored_until - start))
        scored_until = end
        end += stride
    return windows


def split_for_rank(items: list, rank: int, world_size: int) -> list:
    """Contiguous block of ``items`` for one rank (sizes differ by at most one)."""
    n = len(items)
    return items[rank * n // world_size:(rank + 1) * n // world_size]


def lut_tensors(lut: ByteLUT, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(lut.base_bytes, dtype=torch.int64, device=device),
            torch.as_tensor(lut.has_leading_space, dtype=torch.bool, device=device),
            torch.as_tensor(lut.is_boundary, dtype=torch.bool, device=device))


def as_token_tensor(tokens) -> torch.Tensor:
    if isinstance(tokens, torch.Tensor):
        return tokens.to(torch.int64).cpu()
    return torch.from_numpy(np.asarray(tokens).astype(np.int64))


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def score_windows(model, tokens: torch.Tensor, windows: list[Window], luts, device: torch.device,
                  batch_size: int = 8, autocast_dtype: torch.dtype | None = None) -> tuple[float, int, int]:
    """(sum of NLL in nats as float64, scored tokens, scored bytes) over ``windows``.

    Call under torch.no_grad(); the model maps (batch, time) ids to (batch, time, vocab) logits."""
    base_bytes, has_leading_space, is_boundary = luts
    sum_nll, count, num_bytes = 0.0, 0, 0
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        length = batch[0].length
        rows = torch.stack([tokens[w.start:w.start + length + 1] for w in batch]).to(device, non_blocking=True)
        inputs, targets = rows[:, :-1], rows[:, 1:]
        with _autocast(device, autocast_dtype):
            logits = model(inputs)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                              reduction="none").view(len(batch), length)
        offsets = torch.arange(length, device=device)
        score_from = torch.tensor([w.score_from for w in batch], device=device)
        mask = offsets.unsqueeze(0) >= score_from.unsqueeze(1)
        token_bytes = base_bytes[targets] + (has_leading_space[targets] & ~is_boundary[inputs]).to(torch.int64)
        sum_nll += float(nll.double()[mask].sum().item())
        count += int(mask.sum().item())
        num_bytes += int(token_bytes[mask].sum().item())
    return sum_nll, count, num_bytes


def reduce_in_rank_order(values: list[float], device: torch.device) -> list[float]:
    """Sum per-rank float64 values in rank order on every rank (bitwise identical everywhere)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    local = torch.tensor(values, dtype=torch.float64, device=device)
    gathered = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    total = [0.0] * len(values)
    for part in gathered:  # fixed order: rank 0, 1, ...
        for k, v in enumerate(part.tolist()):
            total[k] += v
    return total


def evaluate(model, tokens, lut: ByteLUT, *, seq_len: int, stride: int | None = None, batch_size: int = 8,
             device: torch.device | str | None = None, autocast_dtype: torch.dtype | None = None,
             rank: int = 0, world_size: int = 1) -> EvalResult:
    """val_loss and val_bpb of ``model`` on a validation stream (non-overlapping when stride is
    None or seq_len, sliding otherwise). With world_size > 1, call on every rank."""
    started = time.perf_counter()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    tokens = as_token_tensor(tokens)
    if tokens.numel() and int(tokens.max()) >= lut.table_size:
        raise ValueError(f"token id {int(tokens.max())} is outside the byte table of {lut.table_size} entries")
    windows = make_windows(scored_target_count(tokens.numel(), seq_len), seq_len, stride)
    luts = lut_tensors(lut, device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        local = score_windows(model, tokens, split_for_rank(windows, rank, world_size), luts, device,
                              batch_size, autocast_dtype)
    model.train(was_training)
    sum_nll, count, num_bytes = reduce_in_rank_order(list(map(float, local)), device)
    val_loss, val_bpb = val_loss_and_bpb(sum_nll, int(count), int(num_bytes))
    return EvalResult(val_loss, val_bpb, sum_nll, int(count), int(num_bytes),
                      1000.0 * (time.perf_counter() - started))

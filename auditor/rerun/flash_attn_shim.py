"""A stand-in for FlashAttention 3's ``flash_attn_interface``, built on torch SDPA.

Many submissions import ``flash_attn_func`` (and ``flash_attn_varlen_func``) from
``flash_attn_interface``, the Hopper build of FlashAttention 3, which is often not installed
where a rerun happens. ``pgolf-audit rerun --shim-flash-attn`` copies this file into a folder
on the child's PYTHONPATH as ``flash_attn_interface.py``. The numbers a run produces are then
checkable (same math, different kernels, so bit-for-bit equality is not expected); its timings
are not comparable with FA3's, and the review says so.

Interface (FA3 as of 2025, ``hopper/flash_attn_interface.py``):

- ``flash_attn_func(q, k, v, softmax_scale=None, causal=False, qv=None, q_descale=None,
  k_descale=None, v_descale=None, window_size=(-1, -1), attention_chunk=0, softcap=0.0,
  num_splits=1, pack_gqa=None, deterministic=False, sm_margin=0, return_attn_probs=False)``
  with q ``(batch, seqlen_q, heads, headdim)``, k/v ``(batch, seqlen_k, heads_kv, headdim)``,
  ``heads % heads_kv == 0`` (GQA/MQA: query head h uses key head ``h // (heads // heads_kv)``).
- ``flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
  seqused_q=None, seqused_k=None, softmax_scale=None, causal=False, ...)`` with packed
  ``(total, heads, headdim)`` tensors; sequences may be empty (padded ``cu_seqlens``).
- Causal masks are aligned to the bottom-right corner when seqlen_q != seqlen_k; a window
  ``(left, right)`` keeps keys ``[i + sk - sq - left, i + sk - sq + right]``; a query row with
  no key gets a zero output (and a log-sum-exp of +inf).

Return value. FA3 returns ``out`` unless ``return_attn_probs=True``, then ``(out, softmax_lse)``
with lse ``(batch, heads, seqlen_q)`` (varlen: ``(heads, total_q)``) in float32. The 2024
FA3 beta always returned ``(out, softmax_lse)``; scripts written for it index ``[0]``. Set
``PGOLF_FA3_SHIM_RETURNS=tuple`` for that style (the harness does it when the script indexes
or unpacks the result). The lse, when returned, carries no gradient, as in FA3.

Unsupported (raise ``NotImplementedError``, so a run fails loudly rather than computing
something else): ``qv``, ``attention_chunk``, ``seqused_q/k``, fp8 inputs.

Implementation. Dense: ``scaled_dot_product_attention`` (``is_causal`` or a boolean mask);
softcap and rows that can be fully masked take an explicit float32 softmax. Varlen with the
same ``cu_seqlens`` for queries and keys (what training scripts pass) is computed in blocks of
``max_seqlen`` tokens: a sequence no longer than ``max_seqlen`` lies within a block and its
neighbour(s), so each block attends to two (causal) or three blocks of keys under a
same-sequence mask. Every shape is static, so the function traces under
``torch.compile(fullgraph=True)``. Other varlen calls loop over sequences (eager only).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

IS_PGOLF_AUDIT_SHIM = True
RETURN_STYLE_ENV = "PGOLF_FA3_SHIM_RETURNS"
_FP8_DTYPES = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
                    if hasattr(torch, n))


# Read once at import: the harness sets it before the process starts, and a module constant
# (unlike an environment lookup) is free inside torch.compile'd code.
RETURNS_TUPLE = os.environ.get(RETURN_STYLE_ENV, "out").strip().lower() == "tuple"


def _sdpa_has_gqa() -> bool:
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2] if p.isdigit())
    return version >= (2, 5)


_SDPA_GQA = _sdpa_has_gqa()


def _check(q, k, v, qv=None, attention_chunk=0, seqused_q=None, seqused_k=None) -> None:
    if qv is not None:
        raise NotImplementedError("flash_attn_interface shim (pgolf-audit): qv is not supported")
    if attention_chunk:
        raise NotImplementedError("flash_attn_interface shim (pgolf-audit): attention_chunk is not supported")
    if seqused_q is not None or seqused_k is not None:
        raise NotImplementedError("flash_attn_interface shim (pgolf-audit): seqused_q/seqused_k are not supported")
    if q.dtype in _FP8_DTYPES:
        raise NotImplementedError("flash_attn_interface shim (pgolf-audit): fp8 inputs are not supported")
    if q.shape[-2] % k.shape[-2] != 0 or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"flash_attn_interface shim: {q.shape[-2]} query heads are not a multiple of "
                         f"{k.shape[-2]} key heads (value heads {v.shape[-2]})")


def _window(window_size, causal: bool) -> tuple[int, int]:
    left, right = (int(window_size[0]), int(window_size[1])) if window_size is not None else (-1, -1)
    if causal:
        right = 0
    return left, right


def _allowed(rel: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Keys allowed for a query, from the key's position relative to the query's aligned one."""
    allowed = torch.ones_like(rel, dtype=torch.bool)
    if left >= 0:
        allowed = allowed & (rel >= -left)
    if right >= 0:
        allowed = allowed & (rel <= right)
    return allowed


def _dense_mask(sq: int, sk: int, left: int, right: int, device) -> torch.Tensor:
    q_pos = torch.arange(sq, device=device).view(sq, 1) + (sk - sq)  # bottom-right alignment
    k_pos = torch.arange(sk, device=device).view(1, sk)
    return _allowed(k_pos - q_pos, left, right)


def _expand_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(..., heads_kv, seq, dim) -> (..., heads_kv * groups, seq, dim), head h from h // groups."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=-3)


def _sdpa(q, k, v, scale, *, is_causal=False, mask=None):
    """SDPA over (batch, heads, seq, dim) tensors with GQA."""
    groups = q.shape[-3] // k.shape[-3]
    if groups > 1 and not _SDPA_GQA:
        k, v = _expand_heads(k, groups), _expand_heads(v, groups)
        groups = 1
    kwargs = {"enable_gqa": True} if groups > 1 else {}
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale, **kwargs)


def _scores(q, k, scale, softcap):
    groups = q.shape[-3] // k.shape[-3]
    s = torch.matmul(q.float(), _expand_heads(k, groups).float().transpose(-2, -1)) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    return s


def _explicit(q, k, v, scale, mask, softcap):
    """Masked softmax attention in float32 over (batch, heads, seq, dim); rows with no key -> 0."""
    groups = q.shape[-3] // k.shape[-3]
    s = _scores(q, k, scale, softcap).masked_fill(~mask, float("-inf"))
    row_max = s.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    p = torch.exp(s - row_max)
    denom = p.sum(dim=-1, keepdim=True)
    out = torch.matmul(p, _expand_heads(v, groups).float()) / torch.where(denom > 0, denom, torch.ones_like(denom))
    return out.to(q.dtype)


@torch.no_grad()
def _lse(q, k, scale, mask, softcap):
    """Log-sum-exp of the scaled scores per query (float32, +inf for rows with no key), one
    batch entry at a time to bound memory."""
    rows = []
    for b in range(q.shape[0]):
        s = _scores(q[b:b + 1], k[b:b + 1], scale, softcap)
        s = s.masked_fill(~(mask[b:b + 1] if mask.dim() == 4 and mask.shape[0] > 1 else mask), float("-inf"))
        lse = torch.logsumexp(s, dim=-1)
        rows.append(torch.where(torch.isfinite(lse), lse, torch.full_like(lse, float("inf"))))
    return torch.cat(rows, dim=0)


def _dense(q, k, v, scale, causal, window_size, softcap, need_lse):
    """(out, lse or None) for (batch, seq, heads, dim) tensors."""
    sq, sk = q.shape[1], k.shape[1]
    left, right = _window(window_size, causal)
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    plain = left < 0 and right < 0
    mask = None if plain else _dense_mask(sq, sk, left, right, q.device)
    if softcap > 0 or (causal and sq > sk):
        full_mask = mask if mask is not None else torch.ones(sq, sk, dtype=torch.bool, device=q.device)
        out = _explicit(qh, kh, vh, scale, full_mask, softcap)
    elif plain:
        out = _sdpa(qh, kh, vh, scale)
    elif causal and sq == sk and left < 0:
        out = _sdpa(qh, kh, vh, scale, is_causal=True)
    else:
        out = _sdpa(qh, kh, vh, scale, mask=mask)
    lse = None
    if need_lse:
        full_mask = mask if mask is not None else torch.ones(sq, sk, dtype=torch.bool, device=q.device)
        lse = _lse(qh, kh, scale, full_mask, softcap)
    return out.transpose(1, 2), lse


def flash_attn_func(q, k, v, softmax_scale=None, causal=False, qv=None, q_descale=None, k_descale=None,
                    v_descale=None, window_size=(-1, -1), attention_chunk=0, softcap=0.0, num_splits=1,
                    pack_gqa=None, deterministic=False, sm_margin=0, return_attn_probs=False, **_ignored):
    """FA3's ``flash_attn_func`` on torch SDPA (see the module docstring)."""
    _check(q, k, v, qv, attention_chunk)
    scale = softmax_scale if softmax_scale is not None else q.shape[-1] ** -0.5
    want_lse = bool(return_attn_probs) or RETURNS_TUPLE
    out, lse = _dense(q, k, v, scale, bool(causal), window_size, float(softcap or 0.0), want_lse)
    return (out, lse) if want_lse else out


# ---- varlen --------------------------------------------------------------------------------


def _segments(cu: torch.Tensor, total: int) -> torch.Tensor:
    """Sequence index of each of ``total`` packed positions (repeated boundaries = empty)."""
    positions = torch.arange(total, device=cu.device, dtype=cu.dtype)
    return torch.searchsorted(cu, positions, right=True) - 1


def _blocks(x: torch.Tensor, block: int, before: int, after: int, fill) -> torch.Tensor:
    """(T, ...) padded to nb*block -> (nb, (before + 1 + after) * block, ...) windows of
    neighbouring blocks: window b covers blocks b-before .. b+after."""
    nb = x.shape[0] // block
    pad_shape = (before * block, *x.shape[1:])
    tail_shape = (after * block, *x.shape[1:])
    ext = torch.cat([torch.full(pad_shape, fill, dtype=x.dtype, device=x.device), x,
                     torch.full(tail_shape, fill, dtype=x.dtype, device=x.device)], dim=0)
    span = (before + 1 + after) * block
    windows = ext.unfold(0, span, block)  # (nb, ..., span)
    return windows.movedim(-1, 1)[:nb]


def _varlen_blocked(q, k, v, cu, block, scale, causal, window_size, softcap, need_lse):
    """Varlen attention with one cu_seqlens for queries and keys, in blocks of ``block``."""
    total, heads = q.shape[0], q.shape[1]
    nb = -(-total // block)
    padded = nb * block
    pad = padded - total
    left, right = _window(window_size, causal)
    seg = _segments(cu, total).to(torch.int64)
    # Padding positions form sequences of their own (distinct negative ids): each attends only
    # to itself, so no row is empty, and their outputs are dropped.
    pad_ids = -2 - torch.arange(pad, device=q.device, dtype=torch.int64)
    seg = torch.cat([seg, pad_ids])
    pos = torch.arange(padded, device=q.device, dtype=torch.int64)

    def padded_rows(x):
        return torch.cat([x, x.new_zeros((pad, *x.shape[1:]))], dim=0) if pad else x

    after = 0 if causal else 1
    q_blocks = padded_rows(q).view(nb, block, heads, q.shape[-1]).transpose(1, 2)       # (nb, H, W, D)
    k_blocks = _blocks(padded_rows(k), block, 1, after, 0).transpose(1, 2)               # (nb, Hk, span, D)
    v_blocks = _blocks(padded_rows(v), block, 1, after, 0).transpose(1, 2)
    seg_k = _blocks(seg, block, 1, after, -1)                                             # (nb, span), -1: no sequence
    pos_k = _blocks(pos, block, 1, after, -1)
    seg_q = seg.view(nb, block)
    pos_q = pos.view(nb, block)
    same = seg_q.unsqueeze(-1) == seg_k.unsqueeze(-2)                                     # (nb, W, span)
    mask = same & _allowed(pos_k.unsqueeze(-2) - pos_q.unsqueeze(-1), left, right)
    mask = mask.unsqueeze(1)                                                              # (nb, 1, W, span)
    if softcap > 0:
        out = _explicit(q_blocks, k_blocks, v_blocks, scale, mask, softcap)
    else:
        out = _sdpa(q_blocks, k_blocks, v_blocks, scale, mask=mask)
    out = out.transpose(1, 2).reshape(padded, heads, v.shape[-1])[:total]
    lse = None
    if need_lse:
        lse = _lse(q_blocks, k_blocks, scale, mask, softcap)                              # (nb, H, W)
        lse = lse.transpose(0, 1).reshape(heads, padded)[:, :total]
    return out, lse


def _varlen_loop(q, k, v, cu_q, cu_k, scale, causal, window_size, softcap, need_lse):
    """Any varlen call, one sequence at a time (eager only: reads the boundaries)."""
    starts_q, starts_k = cu_q.tolist(), cu_k.tolist()
    out = q.new_zeros((q.shape[0], q.shape[1], v.shape[-1]))
    lse = torch.full((q.shape[1], q.shape[0]), float("inf"), device=q.device) if need_lse else None
    pieces = []
    for i in range(len(starts_q) - 1):
        a, b = starts_q[i], starts_q[i + 1]
        c, d = starts_k[i], starts_k[i + 1]
        if b <= a:
            continue
        o, l = _dense(q[a:b].unsqueeze(0), k[c:d].unsqueeze(0), v[c:d].unsqueeze(0), scale, causal, window_size,
                      softcap, need_lse)
        pieces.append((a, b, o[0]))
        if need_lse:
            lse[:, a:b] = l[0]
    if pieces:
        index = torch.cat([torch.arange(a, b, device=q.device) for a, b, _ in pieces])
        out = out.index_copy(0, index, torch.cat([o for _, _, o in pieces], dim=0))
    return out, lse


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, seqused_q=None,
                           seqused_k=None, softmax_scale=None, causal=False, qv=None, q_descale=None,
                           k_descale=None, v_descale=None, window_size=(-1, -1), attention_chunk=0, softcap=0.0,
                           num_splits=1, pack_gqa=None, deterministic=False, sm_margin=0, return_attn_probs=False,
                           **_ignored):
    """FA3's ``flash_attn_varlen_func`` on torch SDPA (see the module docstring)."""
    _check(q, k, v, qv, attention_chunk, seqused_q, seqused_k)
    scale = softmax_scale if softmax_scale is not None else q.shape[-1] ** -0.5
    want_lse = bool(return_attn_probs) or RETURNS_TUPLE
    softcap = float(softcap or 0.0)
    same_layout = (cu_seqlens_q is cu_seqlens_k and int(max_seqlen_q) == int(max_seqlen_k)
                   and q.shape[0] == k.shape[0])
    if same_layout and int(max_seqlen_q) > 0:
        out, lse = _varlen_blocked(q, k, v, cu_seqlens_q, int(max_seqlen_q), scale, bool(causal), window_size,
                                   softcap, want_lse)
    else:
        out, lse = _varlen_loop(q, k, v, cu_seqlens_q, cu_seqlens_k, scale, bool(causal), window_size, softcap,
                                want_lse)
    return (out, lse) if want_lse else out


__all__ = ["flash_attn_func", "flash_attn_varlen_func", "IS_PGOLF_AUDIT_SHIM"]

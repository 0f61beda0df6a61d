"""The challenge metric from three sums: no torch, no numpy.

val_loss is the mean negative log-likelihood in nats per scored token; val_bpb charges the
same total code length, in bits, to the UTF-8 bytes those tokens stand for:

    val_bpb = (sum_nll_nats / ln 2) / bytes

so val_bpb / val_loss = tokens / (bytes * ln 2), a property of the token and byte set alone.
"""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def val_loss_and_bpb(sum_nll_nats: float, tokens: int, num_bytes: int) -> tuple[float, float]:
    """(val_loss in nats/token, val_bpb in bits/byte) from summed NLL, token count and byte count."""
    if tokens <= 0:
        raise ValueError(f"no scored tokens (tokens={tokens})")
    if num_bytes <= 0:
        raise ValueError(f"no bytes to charge the code length to (bytes={num_bytes})")
    return sum_nll_nats / tokens, sum_nll_nats / (LN2 * num_bytes)


def bits_per_byte(sum_nll_nats: float, tokens: int, num_bytes: int) -> float:
    """val_bpb alone; see val_loss_and_bpb."""
    return val_loss_and_bpb(sum_nll_nats, tokens, num_bytes)[1]


def bpb_per_loss_ratio(tokens: int, num_bytes: int) -> float:
    """val_bpb / val_loss implied by a token and byte count: tokens / (bytes * ln 2)."""
    return tokens / (num_bytes * LN2)

"""A small GPT of the challenge baseline's shape, configurable down to a toy.

Baseline shape (the defaults): vocabulary 1024, 9 layers, width 512, 8 query heads sharing
4 key/value heads (grouped-query attention), a squared-ReLU MLP twice as wide as the model,
rotary position embeddings, RMS-normalised queries and keys, tied input/output embeddings
and a tanh soft cap on the logits. About 17M parameters.

``GPT.forward(input_ids)`` maps token ids (batch, time) to logits (batch, time, vocab): the
interface the reference evaluator and the score-first TTT driver expect of any model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    tie_embeddings: bool = True
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    max_seq_len: int = 4096

    def __post_init__(self) -> None:
        if self.model_dim % self.num_heads:
            raise ValueError(f"model_dim {self.model_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        if (self.model_dim // self.num_heads) % 2:
            raise ValueError("head dimension must be even for rotary embeddings")

    def as_dict(self) -> dict:
        return asdict(self)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    """Rotary position embedding tables, built once for max_seq_len."""

    def __init__(self, head_dim: int, max_seq_len: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, heads, time, head_dim); rotate the two halves of the head dimension.
        t = x.size(-2)
        cos, sin = self.cos[:t].to(x.dtype), self.sin[:t].to(x.dtype)
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.model_dim // config.num_heads
        kv_dim = self.num_kv_heads * self.head_dim
        self.q = nn.Linear(config.model_dim, config.model_dim, bias=False)
        self.k = nn.Linear(config.model_dim, kv_dim, bias=False)
        self.v = nn.Linear(config.model_dim, kv_dim, bias=False)
        self.proj = nn.Linear(config.model_dim, config.model_dim, bias=False)
        self.rotary = Rotary(self.head_dim, config.max_seq_len, config.rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotary(rms_norm(q)), self.rotary(rms_norm(k))
        if self.num_kv_heads != self.num_heads:  # grouped-query attention: share each kv head
            repeat = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_mult * config.model_dim
        self.up = nn.Linear(config.model_dim, hidden, bias=False)
        self.down = nn.Linear(hidden, config.model_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)).square())


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(rms_norm(x))
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.model_dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.head = None if config.tie_embeddings else nn.Linear(config.model_dim, config.vocab_size, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        std = 0.5 / math.sqrt(self.config.model_dim)
        # Tied: the table is also the output head, so it starts small (logits near zero).
        nn.init.normal_(self.embed.weight, std=0.005 if self.config.tie_embeddings else 1.0)
        for block in self.blocks:
            for linear in (block.attn.q, block.attn.k, block.attn.v, block.mlp.up):
                nn.init.normal_(linear.weight, std=std)
            # Residual branches start at zero so the untrained network is the identity plus embeddings.
            nn.init.zeros_(block.attn.proj.weight)
            nn.init.zeros_(block.mlp.down.weight)
        if self.head is not None:
            nn.init.zeros_(self.head.weight)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.size(-1) > self.config.max_seq_len:
            raise ValueError(f"sequence of {input_ids.size(-1)} tokens exceeds max_seq_len {self.config.max_seq_len}")
        x = rms_norm(self.embed(input_ids))
        for block in self.blocks:
            x = block(x)
        x = rms_norm(x)
        weight = self.embed.weight if self.head is None else self.head.weight
        logits = F.linear(x, weight.to(x.dtype)).float()
        cap = self.config.logit_softcap
        return cap * torch.tanh(logits / cap) if cap > 0 else logits

    def loss(self, input_ids: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross entropy in nats."""
        logits = self(input_ids)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target_ids.reshape(-1))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

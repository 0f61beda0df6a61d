"""Per-token byte lookup tables: how many UTF-8 bytes of the source each token stands for.

The challenge charges each scored token t (preceded by token p) with

    base_bytes[t] + (has_leading_space[t] and not is_boundary[p])

- base_bytes: bytes of the piece text without its leading "▁" (any inner "▁" is a space,
  one byte); byte-fallback pieces ``<0xAB>`` stand for exactly one byte; control, unknown
  and unused pieces (BOS, EOS, UNK, PAD) stand for none.
- has_leading_space: the piece starts with "▁". That space is one byte, counted once, and
  only when the previous token is not a boundary token (sentencepiece drops the dummy-prefix
  space at the start of a document, which follows BOS).
- is_boundary: control, unknown and unused pieces, and ids past the tokenizer's vocabulary.

Known ways to get this wrong (all reproduced and detected in tests/test_reference_bytes.py):
the "+1" put into base_bytes and added again (≈17% more bytes), byte-fallback pieces counted
as the length of their text (3 for U+FFFD, 6 for "<0xAB>"), and bytes taken from a partition
shifted against the scored tokens.

Note for pieces with an inner "▁" (none in the challenge's tokenizers): the challenge's own
table counts that character as its 3 UTF-8 bytes; it decodes to one space, so we count 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEADING_SPACE = "\u2581"


@dataclass(frozen=True)
class ByteLUT:
    base_bytes: np.ndarray  # int32 [table_size]
    has_leading_space: np.ndarray  # bool [table_size]
    is_boundary: np.ndarray  # bool [table_size]

    @property
    def table_size(self) -> int:
        return int(self.base_bytes.shape[0])

    def token_bytes(self, prev_ids: np.ndarray, target_ids: np.ndarray) -> np.ndarray:
        """Bytes of each target token given the token before it (int64, same shape)."""
        target_ids = np.asarray(target_ids, dtype=np.int64)
        prev_ids = np.asarray(prev_ids, dtype=np.int64)
        counted_space = self.has_leading_space[target_ids] & ~self.is_boundary[prev_ids]
        return self.base_bytes[target_ids].astype(np.int64) + counted_space

    def stream_bytes(self, tokens: np.ndarray) -> np.ndarray:
        """Bytes of every position of a token stream; position 0 counts as following a boundary."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size == 0:
            return np.zeros(0, dtype=np.int64)
        out = self.base_bytes[tokens].astype(np.int64)
        out[1:] += self.has_leading_space[tokens[1:]] & ~self.is_boundary[tokens[:-1]]
        return out


def build_byte_lut(sp, vocab_size: int | None = None) -> ByteLUT:
    """The byte lookup table of a sentencepiece processor, padded to ``vocab_size`` entries."""
    piece_count = int(sp.get_piece_size())
    table_size = max(piece_count, vocab_size or 0)
    base_bytes = np.zeros(table_size, dtype=np.int32)
    has_leading_space = np.zeros(table_size, dtype=bool)
    is_boundary = np.ones(table_size, dtype=bool)  # ids past the tokenizer never carry bytes
    for token_id in range(piece_count):
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_unused(token_id):
            continue
        is_boundary[token_id] = False
        if sp.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = sp.id_to_piece(token_id)
        if piece.startswith(LEADING_SPACE):
            has_leading_space[token_id] = True
            piece = piece[1:]
        base_bytes[token_id] = len(piece.replace(LEADING_SPACE, " ").encode("utf-8"))
    return ByteLUT(base_bytes, has_leading_space, is_boundary)


def lut_from_arrays(base_bytes, has_leading_space, is_boundary) -> ByteLUT:
    """A ByteLUT from three equally long arrays (e.g. a submission's shipped table)."""
    base = np.asarray(base_bytes).astype(np.int32)
    lead = np.asarray(has_leading_space).astype(bool)
    boundary = np.asarray(is_boundary).astype(bool)
    if not (base.ndim == lead.ndim == boundary.ndim == 1 and base.shape == lead.shape == boundary.shape):
        raise ValueError(f"byte LUT arrays must be 1-D and equally long, got shapes "
                         f"{base.shape}, {lead.shape}, {boundary.shape}")
    return ByteLUT(base, lead, boundary)

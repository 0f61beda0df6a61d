"""Check a per-token byte accounting against the exact bytes of the decoded documents.

Two independent counts of the same validation stream:

- the accounting under test: per-position byte counts from a lookup table (ours or a
  submission's) or from a per-token byte sidecar file;
- the exact count: each document (the tokens between control tokens such as BOS) decoded by
  sentencepiece to text, every "▁" that survives decoding (spaces that fell back to the bytes
  E2 96 81) read as the space it encodes, and the UTF-8 bytes counted.

Where they disagree, documents are decoded piece group by piece group (a non-byte piece, a
control token, or the byte-fallback pieces of one UTF-8 character) to name the pieces that
cause it, and the disagreement is matched against the known bug families: leading-space byte
counted twice, byte-fallback pieces counted as their text length, spaces falling back to
E2 96 81 without a standalone "▁" piece, control tokens charged bytes, and a partition of
bytes shifted against the tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .byte_lut import LEADING_SPACE, ByteLUT
from .metric import bpb_per_loss_ratio

SPACE_FALLBACK_BYTES = (0xE2, 0x96, 0x81)  # UTF-8 of "▁"
DECODE_BATCH = 512
CONTEXT_GROUPS = 8  # piece groups of left context when decoding one group: more than enough for sentencepiece


@dataclass(frozen=True)
class TokenizerTables:
    """What the exact count needs to know about each id, read from sentencepiece once."""

    pieces: tuple[str, ...]
    is_control: np.ndarray  # bool: separates documents, decodes to nothing
    is_unknown: np.ndarray
    byte_value: np.ndarray  # int16: value of a byte-fallback piece, -1 for others
    has_space_piece: bool  # a standalone "▁" piece exists

    @property
    def piece_count(self) -> int:
        return len(self.pieces)

    def piece(self, token_id: int) -> str:
        return self.pieces[token_id] if 0 <= token_id < len(self.pieces) else f"<id {token_id}>"


def tokenizer_tables(sp) -> TokenizerTables:
    n = int(sp.get_piece_size())
    pieces = tuple(sp.id_to_piece(i) for i in range(n))
    is_control = np.array([bool(sp.is_control(i)) for i in range(n)], dtype=bool)
    is_unknown = np.array([bool(sp.is_unknown(i)) for i in range(n)], dtype=bool)
    byte_value = np.full(n, -1, dtype=np.int16)
    for i in range(n):
        if sp.is_byte(i):
            byte_value[i] = int(pieces[i][3:5], 16)  # "<0xAB>"
    space_id = sp.piece_to_id(LEADING_SPACE)
    has_space_piece = not sp.is_unknown(space_id) and pieces[space_id] == LEADING_SPACE
    return TokenizerTables(pieces, is_control, is_unknown, byte_value, has_space_piece)


def decoded_bytes(text: str) -> int:
    """UTF-8 bytes of decoded text, with each surviving "▁" read as the one-byte space it encodes."""
    return len(text.encode("utf-8")) - 2 * text.count(LEADING_SPACE)


def document_bounds(tokens: np.ndarray, tables: TokenizerTables) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of documents: each starts at a control token (or at position 0)."""
    ids = np.asarray(tokens, dtype=np.int64)
    control_positions = np.flatnonzero(tables.is_control[ids]) if ids.size else np.zeros(0, dtype=np.int64)
    starts = control_positions
    if ids.size and (starts.size == 0 or starts[0] != 0):
        starts = np.concatenate([[0], starts])
    ends = np.concatenate([starts[1:], [ids.size]]).astype(np.int64)
    return starts.astype(np.int64), ends


def _content(tokens: np.ndarray, start: int, end: int, tables: TokenizerTables) -> list[int]:
    first = start + 1 if tables.is_control[int(tokens[start])] else start
    return [int(t) for t in tokens[first:end]]


def exact_document_bytes(sp, tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                         tables: TokenizerTables) -> np.ndarray:
    """Exact bytes of each document, by decoding it with sentencepiece."""
    out = np.zeros(starts.size, dtype=np.int64)
    for batch_start in range(0, starts.size, DECODE_BATCH):
        batch = range(batch_start, min(batch_start + DECODE_BATCH, starts.size))
        texts = sp.decode([_content(tokens, int(starts[d]), int(ends[d]), tables) for d in batch])
        for d, text in zip(batch, texts):
            out[d] = decoded_bytes(text)
    return out


def piece_groups(ids: list[int], tables: TokenizerTables) -> list[tuple[int, int]]:
    """Cut a document's content into groups that decode on their own: one non-byte piece each,
    or the byte-fallback pieces of one UTF-8 character (a lead byte and its continuations)."""
    groups: list[tuple[int, int]] = []
    for i, token_id in enumerate(ids):
        value = int(tables.byte_value[token_id]) if token_id < tables.piece_count else -1
        continues_char = 0x80 <= value <= 0xBF and i > 0 and groups and \
            int(tables.byte_value[ids[i - 1]]) >= 0
        if continues_char:
            groups[-1] = (groups[-1][0], i + 1)
        else:
            groups.append((i, i + 1))
    return groups


def exact_group_bytes(sp, ids: list[int], groups: list[tuple[int, int]]) -> list[int]:
    """Exact bytes each piece group adds to its document, decoded with a few groups of context."""
    out = []
    for g, (start, end) in enumerate(groups):
        context_start = groups[max(0, g - CONTEXT_GROUPS)][0]
        with_group = sp.decode(ids[context_start:end])
        without = sp.decode(ids[context_start:start]) if start > context_start else ""
        if start > context_start:
            out.append(decoded_bytes(with_group) - decoded_bytes(without))
        else:
            out.append(decoded_bytes(with_group))
    return out


@dataclass
class MismatchRow:
    """One piece group (in one position class) whose accounted bytes differ from its exact bytes."""

    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    at_document_start: bool
    occurrences: int = 0
    accounted_bytes: int = 0
    exact_bytes: int = 0

    @property
    def delta(self) -> int:
        return self.accounted_bytes - self.exact_bytes

    def describe(self) -> str:
        where = "at document start" if self.at_document_start else "inside a document"
        per = self.occurrences or 1
        return (f"{' '.join(self.pieces)} ({where}): counted {self.accounted_bytes / per:g} bytes, "
                f"decodes to {self.exact_bytes / per:g}, {self.occurrences} times, {self.delta:+d} bytes")

    def to_dict(self) -> dict:
        return {"ids": list(self.ids), "pieces": list(self.pieces), "at_document_start": self.at_document_start,
                "occurrences": self.occurrences, "accounted_bytes": self.accounted_bytes,
                "exact_bytes": self.exact_bytes, "delta": self.delta}


@dataclass
class Diagnosis:
    kind: str
    message: str
    pieces: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "pieces": list(self.pieces)}


@dataclass
class AccountingReport:
    source: str  # what was checked: "lut", a LUT file, or a sidecar pattern
    tokens: int
    documents: int
    bytes_accounted: int
    bytes_exact: int
    mismatched_documents: int
    attributed_documents: int  # documents decoded piece group by piece group
    mismatched_groups: int = 0  # piece groups in those documents whose counts differ
    rows: list[MismatchRow] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return (self.bytes_accounted == self.bytes_exact and self.mismatched_documents == 0
                and self.mismatched_groups == 0)

    @property
    def tokens_per_byte(self) -> float:
        return self.tokens / self.bytes_exact if self.bytes_exact else float("nan")

    @property
    def relative_difference(self) -> float:
        return self.bytes_accounted / self.bytes_exact - 1.0 if self.bytes_exact else float("nan")

    def bpb_per_loss_ratio(self, scored_tokens: int | None = None) -> float:
        """val_bpb / val_loss on this stream with exact bytes (all positions after the first scored)."""
        scored = self.tokens - 1 if scored_tokens is None else scored_tokens
        return bpb_per_loss_ratio(scored, self.bytes_exact) if self.bytes_exact else float("nan")

    def to_dict(self) -> dict:
        def finite(value: float) -> float | None:
            return value if value == value and abs(value) != float("inf") else None

        return {
            "source": self.source,
            "tokens": self.tokens,
            "documents": self.documents,
            "bytes_lut": self.bytes_accounted,
            "bytes_exact": self.bytes_exact,
            "agrees": self.agrees,
            "tokens_per_byte": finite(self.tokens_per_byte),
            "bytes_per_token": self.bytes_exact / self.tokens if self.tokens else None,
            "relative_difference": finite(self.relative_difference),
            "bpb_per_loss_ratio": finite(self.bpb_per_loss_ratio()),
            "mismatched_documents": self.mismatched_documents,
            "attributed_documents": self.attributed_documents,
            "mismatched_groups": self.mismatched_groups,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "pieces": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
        }


def compare_accounting(sp, tokens: np.ndarray, accounted: np.ndarray, *, source: str = "lut",
                       max_attributed_documents: int = 200, spot_check_documents: int = 50,
                       max_rows: int = 20) -> AccountingReport:
    """Compare per-position byte counts ``accounted`` (one per token of ``tokens``) with the
    exact bytes of the decoded documents, attribute disagreements to pieces, and diagnose.

    Every document's total is checked. Documents whose totals differ (up to
    ``max_attributed_documents``) and, in any case, the first ``spot_check_documents`` are
    also checked piece group by piece group: per-document totals can agree while single
    tokens are charged the wrong bytes (a partition shifted by one position, say, when
    documents end alike)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    accounted = np.asarray(accounted, dtype=np.int64)
    if accounted.shape != tokens.shape:
        raise ValueError(f"{source}: {accounted.size} byte counts for {tokens.size} tokens")
    tables = tokenizer_tables(sp)
    if tokens.size and int(tokens.max()) >= tables.piece_count:
        raise ValueError(f"token id {int(tokens.max())} is outside the tokenizer's {tables.piece_count} pieces")
    starts, ends = document_bounds(tokens, tables)
    exact_docs = exact_document_bytes(sp, tokens, starts, ends, tables)
    accounted_docs = np.add.reduceat(accounted, starts) if starts.size else np.zeros(0, dtype=np.int64)
    mismatched = np.flatnonzero(accounted_docs != exact_docs)
    report = AccountingReport(source, int(tokens.size), int(starts.size), int(accounted.sum()),
                              int(exact_docs.sum()), int(mismatched.size), 0)
    if not tables.has_space_piece:
        report.notes.append("tokenizer has no standalone ▁ piece: a space that does not merge into a piece "
                            "falls back to the three bytes E2 96 81")
    if any(0xE000 <= ord(ch) <= 0xF8FF for piece in tables.pieces for ch in piece):
        report.notes.append("pieces hold private-use characters (CaseOps-style transform): decoded bytes are "
                            "transformed-text bytes; the challenge scores original bytes from a byte sidecar")

    checked = list(dict.fromkeys([int(d) for d in mismatched[:max_attributed_documents]]
                                 + list(range(min(spot_check_documents, starts.size)))))
    rows: dict[tuple, MismatchRow] = {}
    exact_at = np.full(tokens.size, -1, dtype=np.int64)  # exact bytes of single-token groups checked
    for d in checked:
        report.mismatched_groups += _attribute_document(sp, tokens, accounted, int(starts[d]), int(ends[d]),
                                                        tables, rows, exact_at)
    report.attributed_documents = len(checked)
    if report.agrees:
        return report
    ordered = sorted(rows.values(), key=lambda r: (-abs(r.delta), -r.occurrences, r.ids))
    report.rows = ordered[:max_rows]
    report.diagnoses = _diagnose(tokens, accounted, starts, exact_docs, accounted_docs, exact_at, ordered, tables)
    return report


def _attribute_document(sp, tokens, accounted, start, end, tables, rows, exact_at) -> int:
    """Check one document group by group; returns the number of groups whose counts differ."""
    mismatches = 0
    has_control = bool(tables.is_control[int(tokens[start])])
    if has_control:
        exact_at[start] = 0
        if accounted[start] != 0:
            _add_row(rows, (int(tokens[start]),), tables, True, int(accounted[start]), 0)
            mismatches += 1
    content_start = start + 1 if has_control else start
    ids = [int(t) for t in tokens[content_start:end]]
    groups = piece_groups(ids, tables)
    exact = exact_group_bytes(sp, ids, groups)
    for (g_start, g_end), exact_bytes in zip(groups, exact):
        if g_end - g_start == 1:
            exact_at[content_start + g_start] = exact_bytes
        counted = int(accounted[content_start + g_start: content_start + g_end].sum())
        if counted != exact_bytes:
            _add_row(rows, tuple(ids[g_start:g_end]), tables, g_start == 0, counted, exact_bytes)
            mismatches += 1
    return mismatches


def _add_row(rows, ids, tables, at_start, counted, exact) -> None:
    key = (ids, at_start)
    row = rows.get(key)
    if row is None:
        row = rows[key] = MismatchRow(ids, tuple(tables.piece(i) for i in ids), at_start)
    row.occurrences += 1
    row.accounted_bytes += counted
    row.exact_bytes += exact


def _diagnose(tokens, accounted, starts, exact_docs, accounted_docs, exact_at, rows, tables) -> list[Diagnosis]:
    diagnoses: list[Diagnosis] = []
    total_delta = sum(r.delta for r in rows) or 1

    def share(selected) -> float:
        return sum(r.delta for r in selected) / total_delta

    def top_pieces(selected, n=8) -> tuple[str, ...]:
        ranked = sorted(selected, key=lambda r: -abs(r.delta))
        return tuple(dict.fromkeys(" ".join(r.pieces) for r in ranked))[:n]

    # A partition shifted against the tokens: the counts agree once they move by k positions,
    # token by token on the checked documents (and document by document where totals differ).
    checked = np.flatnonzero(exact_at >= 0)
    if checked.size:
        unshifted = np.mean(accounted[checked] == exact_at[checked])
        for k in (1, -1, 2, -2):
            moved = np.roll(accounted, -k)
            if np.mean(moved[checked] == exact_at[checked]) > 0.99 > unshifted:
                direction = "before" if k > 0 else "after"
                diagnoses.append(Diagnosis(
                    "shifted-partition",
                    f"byte counts are shifted by {k:+d} position(s) against the tokens: each token is charged "
                    f"the bytes of the token {abs(k)} position(s) {direction} it (the total barely changes; "
                    f"{np.mean(np.add.reduceat(moved, starts) == exact_docs):.0%} of documents match once "
                    f"shifted back, {np.mean(accounted_docs == exact_docs):.0%} as given)"))
                return diagnoses

    leading = [r for r in rows if len(r.ids) == 1 and tables.piece(r.ids[0]).startswith(LEADING_SPACE)
               and tables.byte_value[r.ids[0]] < 0]
    plus_one = [r for r in leading if r.delta == r.occurrences]
    if plus_one and share(plus_one) > 0.5:
        inside = [r for r in plus_one if not r.at_document_start]
        at_start = [r for r in plus_one if r.at_document_start]
        if inside:
            diagnoses.append(Diagnosis(
                "leading-space-double-count",
                f"leading-space byte counted twice: {sum(r.occurrences for r in plus_one)} pieces starting with ▁ "
                f"are charged one byte more than they decode to (the base-byte table already holds the space "
                f"and the accumulator adds it again)", top_pieces(plus_one)))
        else:
            diagnoses.append(Diagnosis(
                "leading-space-after-boundary",
                "leading-space byte counted at document start: the first piece after BOS is charged its ▁, "
                "which sentencepiece drops when decoding", top_pieces(at_start)))
    minus_one = [r for r in leading if r.delta == -r.occurrences]
    if minus_one and share(minus_one) < -0.5:
        diagnoses.append(Diagnosis("leading-space-missing",
                                   "leading-space byte not counted for pieces starting with ▁",
                                   top_pieces(minus_one)))

    def is_byte_row(r) -> bool:
        return all(tables.byte_value[i] >= 0 for i in r.ids)

    space_rows = [r for r in rows if is_byte_row(r)
                  and tuple(int(tables.byte_value[i]) for i in r.ids) == SPACE_FALLBACK_BYTES]
    if space_rows and not tables.has_space_piece:
        diagnoses.append(Diagnosis(
            "space-byte-fallback",
            f"no standalone ▁ piece: {sum(r.occurrences for r in space_rows)} spaces fall back to the bytes "
            f"E2 96 81 and are charged 3 bytes for 1 source byte; a per-token table cannot be exact for this "
            f"tokenizer (add a ▁ piece or count that byte sequence as one space)", top_pieces(space_rows)))
    byte_rows = [r for r in rows if is_byte_row(r) and r not in space_rows]
    over = [r for r in byte_rows if r.delta > 0]
    if over:
        byte_positions = tables.byte_value[tokens] >= 0 if tokens.size else np.zeros(0, dtype=bool)
        counted = Counter(int(v) for v in accounted[byte_positions])
        usual = counted.most_common(1)[0][0] if counted else 0
        diagnoses.append(Diagnosis(
            "byte-fallback-overcount",
            f"byte-fallback pieces counted as {usual} bytes instead of 1 (the length of their text, "
            f"e.g. U+FFFD is 3 bytes and '<0xAB>' is 6)" if usual > 1 else
            "byte-fallback pieces charged more bytes than they stand for", top_pieces(over)))
    control_rows = [r for r in rows if all(tables.is_control[i] for i in r.ids)]
    if control_rows:
        diagnoses.append(Diagnosis("control-token-bytes",
                                   "control tokens (BOS/EOS) charged bytes; they stand for none",
                                   top_pieces(control_rows)))
    unknown_rows = [r for r in rows if any(tables.is_unknown[i] for i in r.ids)]
    if unknown_rows:
        diagnoses.append(Diagnosis("unknown-pieces",
                                   "unknown pieces decode to ' ⁇ ': the source bytes they replaced are lost",
                                   top_pieces(unknown_rows)))
    explained = set(map(id, plus_one + minus_one + space_rows + over + control_rows + unknown_rows))
    other = [r for r in rows if id(r) not in explained]
    if other:
        diagnoses.append(Diagnosis("other", "pieces whose counted bytes differ from their decoded bytes",
                                   top_pieces(other)))
    return diagnoses


def check_lut(sp, tokens: np.ndarray, lut: ByteLUT, *, source: str = "lut", **kwargs) -> AccountingReport:
    """Compare a byte lookup table's counts over a token stream with the exact decoded bytes."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size and int(tokens.max()) >= lut.table_size:
        raise ValueError(f"{source}: token id {int(tokens.max())} is outside the table's {lut.table_size} entries")
    return compare_accounting(sp, tokens, lut.stream_bytes(tokens), source=source, **kwargs)

"""BPB identity check: val_bpb / val_loss must match the declared tokenizer's full validation set.

For a fixed tokenizer scored on the full validation set, every correct evaluator reports

    val_bpb / val_loss = tokens / (bytes * ln 2)

because val_loss is nats per token and val_bpb is bits per byte of the same scored tokens.
The reference ratio of each challenge tokenizer is data (``rules/tracks/bpb_ratios.toml``,
derived from the merged records' logs by ``reference_impl/derive_bpb_ratios.py``). A logged
final line whose ratio deviates beyond the tolerance was scored on a different token set
(partial or older validation export) or with nonstandard byte accounting; this module says
which is likely, in words.

Pure standard library (the static audit stays light): no numpy, torch or sentencepiece.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path

RATIO_TABLE_NAME = "bpb_ratios.toml"


class IdentityVerdict(str, Enum):
    OK = "ok"
    DEVIATES = "deviates"
    UNKNOWN_TOKENIZER = "unknown_tokenizer"


@dataclass(frozen=True)
class TokenizerHint:
    """What the audit knows about the tokenizer a log line was scored with (any subset)."""

    vocab_size: int | None = None
    tokenizer_path: str | None = None
    dataset: str | None = None
    caseops: bool | None = None
    # the scored token count: identifies the tokenizer when nothing else is printed, since each
    # challenge tokenizer's full validation set has a known size
    val_tokens: int | None = None


@dataclass(frozen=True)
class TokenizerReference:
    key: str
    ratio: float
    bytes_per_token: float
    vocab_size: int | None
    caseops: bool
    canonical_val_tokens: tuple[int, ...]
    tokenizer_files: tuple[str, ...]
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class Cause:
    id: str
    byte_inflation_min: float
    byte_inflation_max: float
    text: str
    tokenizers: tuple[str, ...] = ()

    def applies(self, tokenizer: str, byte_inflation: float) -> bool:
        if self.tokenizers and tokenizer not in self.tokenizers:
            return False
        return self.byte_inflation_min <= byte_inflation < self.byte_inflation_max


@dataclass(frozen=True)
class RatioTable:
    tokenizers: dict[str, TokenizerReference]
    causes: tuple[Cause, ...]
    ratio_rel_tolerance: float
    val_tokens_rel_tolerance: float
    rounding_half_units: float
    source: str
    corpus_commit: str = ""


@dataclass(frozen=True)
class BpbIdentityResult:
    verdict: IdentityVerdict
    tokenizer: str | None
    measured_ratio: float
    expected_ratio: float | None = None
    relative_deviation: float | None = None  # measured / expected - 1
    tolerance: float | None = None  # relative, rounding of the printed numbers included
    byte_inflation: float | None = None  # expected / measured - 1 (implied bytes per token)
    val_tokens: int | None = None
    canonical_val_tokens: tuple[int, ...] = ()
    cause_id: str | None = None
    cause: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.verdict is IdentityVerdict.OK


def default_table_path() -> Path:
    """``rules/tracks/bpb_ratios.toml`` in an installed wheel (pgolf_audit/rules) or a checkout."""
    here = Path(__file__).resolve().parent
    candidates = [here / "rules" / "tracks" / RATIO_TABLE_NAME, here.parent / "rules" / "tracks" / RATIO_TABLE_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{RATIO_TABLE_NAME} not found (looked in {', '.join(map(str, candidates))})")


def load_ratio_table(path: str | Path | None = None) -> RatioTable:
    path = Path(path) if path is not None else default_table_path()
    return _load_ratio_table(str(path))


@lru_cache(maxsize=8)
def _load_ratio_table(path: str) -> RatioTable:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    tokenizers = {}
    for key, entry in data.get("tokenizers", {}).items():
        tokenizers[key] = TokenizerReference(
            key=key,
            ratio=float(entry["ratio"]),
            bytes_per_token=float(entry.get("bytes_per_token", 1.0 / (float(entry["ratio"]) * math.log(2)))),
            vocab_size=entry.get("vocab_size"),
            caseops=bool(entry.get("caseops", False)),
            canonical_val_tokens=tuple(int(n) for n in entry.get("canonical_val_tokens", ())),
            tokenizer_files=tuple(entry.get("tokenizer_files", ())),
            datasets=tuple(entry.get("datasets", ())),
        )
    causes = tuple(
        Cause(id=c["id"], byte_inflation_min=float(c["byte_inflation_min"]),
              byte_inflation_max=float(c["byte_inflation_max"]), text=c["text"],
              tokenizers=tuple(c.get("tokenizers", ())))
        for c in data.get("causes", ())
    )
    tolerance = data.get("tolerance", {})
    return RatioTable(
        tokenizers=tokenizers,
        causes=causes,
        ratio_rel_tolerance=float(tolerance.get("ratio_rel", 5e-4)),
        val_tokens_rel_tolerance=float(tolerance.get("val_tokens_rel", 1e-3)),
        rounding_half_units=float(tolerance.get("rounding_half_units", 1.0)),
        source=path,
        corpus_commit=data.get("provenance", {}).get("corpus_commit", ""),
    )


def resolve_tokenizer(hint: TokenizerHint, table: RatioTable) -> tuple[str | None, list[str]]:
    """Tokenizer key for the hint, most specific evidence first; notes say which hints conflict."""
    notes: list[str] = []
    candidates: list[tuple[str, str]] = []  # (key, evidence)
    refs = table.tokenizers.values()
    if hint.tokenizer_path:
        name = Path(hint.tokenizer_path.replace("\\", "/")).name
        key = next((r.key for r in refs if name in r.tokenizer_files), None)
        if key is None:  # the challenge's naming, e.g. fineweb_1024_bpe.model under another folder
            m = re.match(r"fineweb_(\d+)_bpe", name)
            wants_caseops = "caseops" in name.lower()
            key = next((r.key for r in refs if r.caseops == wants_caseops and m and r.vocab_size == int(m.group(1))), None)
        if key:
            candidates.append((key, f"tokenizer {name}"))
    if hint.dataset:
        name = Path(hint.dataset.replace("\\", "/").rstrip("/")).name
        key = next((r.key for r in refs if name in r.datasets), None)
        if key:
            candidates.append((key, f"dataset {name}"))
    if hint.vocab_size is not None:
        wants_caseops = bool(hint.caseops)
        key = next((r.key for r in refs if r.vocab_size == hint.vocab_size and r.caseops == wants_caseops), None)
        if key:
            candidates.append((key, f"vocab_size {hint.vocab_size}" + (" + caseops" if wants_caseops else "")))
    elif hint.caseops:
        key = next((r.key for r in refs if r.caseops), None)
        if key:
            candidates.append((key, "caseops flag"))
    if not candidates and hint.val_tokens:
        key = next((r.key for r in refs if any(abs(hint.val_tokens - n) <= table.val_tokens_rel_tolerance * n
                                               for n in r.canonical_val_tokens)), None)
        if key:
            candidates.append((key, f"val_tokens {hint.val_tokens:,} (the size of its validation set)"))
            notes.append(f"tokenizer inferred from val_tokens {hint.val_tokens:,}: the log names no tokenizer")
    if not candidates:
        return None, notes
    chosen, evidence = candidates[0]
    if hint.caseops and not table.tokenizers[chosen].caseops:
        caseops_key = next((r.key for r in refs if r.caseops), None)
        notes.append(f"caseops flag set but {evidence} names {chosen}")
        if caseops_key:
            chosen = caseops_key
    for key, other in candidates[1:]:
        if key != chosen:
            notes.append(f"{other} suggests {key}, {evidence} suggests {chosen}")
    return chosen, notes


def _half_unit(decimals: int | None, value: float) -> float:
    """Relative rounding error of a number printed with ``decimals`` decimals."""
    if decimals is None or value == 0:
        return 0.0
    return 0.5 * 10.0 ** (-decimals) / abs(value)


def _as_number(value: float | str) -> tuple[float, int | None]:
    if isinstance(value, str):
        text = value.strip()
        decimals = len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else None
        return float(text), decimals
    return float(value), None


def check_bpb_identity(
    hint: TokenizerHint,
    val_loss: float | str,
    val_bpb: float | str,
    val_tokens: int | None = None,
    *,
    table: RatioTable | None = None,
) -> BpbIdentityResult:
    """Compare val_bpb / val_loss with the reference ratio of the hinted tokenizer.

    Pass ``val_loss`` and ``val_bpb`` as the printed strings where possible: the tolerance then
    widens by their rounding (a 4-decimal line carries ~5e-5 relative rounding error).
    """
    table = table or load_ratio_table()
    loss, loss_decimals = _as_number(val_loss)
    bpb, bpb_decimals = _as_number(val_bpb)
    if loss <= 0 or bpb <= 0:
        raise ValueError(f"val_loss and val_bpb must be positive (got {loss}, {bpb})")
    measured = bpb / loss
    key, notes = resolve_tokenizer(hint, table)
    if key is None:
        return BpbIdentityResult(IdentityVerdict.UNKNOWN_TOKENIZER, None, measured, val_tokens=val_tokens,
                                 cause="no reference ratio for this tokenizer", notes=tuple(notes))
    ref = table.tokenizers[key]
    deviation = measured / ref.ratio - 1.0
    tolerance = table.ratio_rel_tolerance + table.rounding_half_units * (
        _half_unit(loss_decimals, loss) + _half_unit(bpb_decimals, bpb))
    byte_inflation = ref.ratio / measured - 1.0
    direction = "below" if deviation < 0 else "above"
    headline = f"ratio {abs(deviation) * 100:.{_pct_digits(deviation)}f}% {direction} {key} ({measured:.6f} vs {ref.ratio:.6f})"

    token_cause = _val_tokens_cause(val_tokens, ref, table)
    if abs(deviation) <= tolerance and token_cause is None:
        return BpbIdentityResult(IdentityVerdict.OK, key, measured, ref.ratio, deviation, tolerance,
                                 byte_inflation, val_tokens, ref.canonical_val_tokens, notes=tuple(notes))
    if token_cause is not None:
        cause_id, text = token_cause
        if abs(deviation) <= tolerance:
            text += f" (ratio itself within tolerance: {measured:.6f} vs {ref.ratio:.6f})"
            cause = text
        else:
            cause = f"{headline} with {text}"
    else:
        cause_id, text = _byte_cause(key, byte_inflation, table)
        cause = f"{headline}: {text}"
        if val_tokens is None:
            cause += "; or a partial validation set (val_tokens not logged)"
    return BpbIdentityResult(IdentityVerdict.DEVIATES, key, measured, ref.ratio, deviation, tolerance,
                             byte_inflation, val_tokens, ref.canonical_val_tokens, cause_id, cause, tuple(notes))


def _pct_digits(fraction: float) -> int:
    return 1 if abs(fraction) >= 0.01 else 2


def _val_tokens_cause(val_tokens: int | None, ref: TokenizerReference,
                      table: RatioTable) -> tuple[str, str] | None:
    if val_tokens is None or not ref.canonical_val_tokens:
        return None
    nearest = min(ref.canonical_val_tokens, key=lambda n: abs(n - val_tokens))
    if abs(val_tokens / nearest - 1.0) <= table.val_tokens_rel_tolerance:
        return None
    if val_tokens < nearest:
        share = val_tokens / nearest
        return ("partial-validation-set",
                f"val_tokens {val_tokens:,} far below {nearest:,} ({share:.1%} of it): partial validation set")
    return ("different-validation-set",
            f"val_tokens {val_tokens:,} above the canonical {nearest:,}: a different (older or re-exported) validation set")


def _byte_cause(key: str, byte_inflation: float, table: RatioTable) -> tuple[str, str]:
    pct = f"{abs(byte_inflation) * 100:.{_pct_digits(byte_inflation)}f}"
    for cause in table.causes:
        if cause.applies(key, byte_inflation):
            return cause.id, cause.text.replace("{pct}", pct)
    return "unexplained", f"implied bytes per token off by {pct}%"

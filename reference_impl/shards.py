"""The challenge's token shard format: read, write, validate.

A shard is a header of 256 little-endian int32 words (word 0: magic 20240520, word 1:
version 1, word 2: token count, the rest zero) followed by the tokens as little-endian
uint16. Every error names the file and says what is wrong with it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_WORDS = 256
SHARD_HEADER_BYTES = SHARD_HEADER_WORDS * 4
SHARD_TOKEN_BYTES = 2
SHARD_MAX_TOKEN_ID = np.iinfo(np.uint16).max


class ShardError(ValueError):
    """A shard file is missing, malformed, or does not fit the tokenizer. Names the file."""


@dataclass(frozen=True)
class ShardHeader:
    path: Path
    magic: int
    version: int
    num_tokens: int


def read_shard_header(path: str | Path) -> ShardHeader:
    """Read and validate a shard header and the file size it implies."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(SHARD_HEADER_BYTES)
    except FileNotFoundError:
        raise ShardError(f"{path}: shard file not found") from None
    except IsADirectoryError:
        raise ShardError(f"{path}: is a folder, not a shard file") from None
    except OSError as exc:
        raise ShardError(f"{path}: cannot read shard: {exc.strerror or exc}") from None
    if len(raw) < SHARD_HEADER_BYTES:
        raise ShardError(
            f"{path}: truncated header: {len(raw)} bytes, a shard header is {SHARD_HEADER_BYTES} bytes "
            f"({SHARD_HEADER_WORDS} int32 words)")
    header = np.frombuffer(raw, dtype="<i4", count=SHARD_HEADER_WORDS)
    magic, version, num_tokens = int(header[0]), int(header[1]), int(header[2])
    if magic != SHARD_MAGIC:
        raise ShardError(f"{path}: wrong magic {magic} (expected {SHARD_MAGIC}): not a token shard")
    if version != SHARD_VERSION:
        raise ShardError(f"{path}: unsupported shard version {version} (expected {SHARD_VERSION})")
    if num_tokens < 0:
        raise ShardError(f"{path}: corrupt header: negative token count {num_tokens}")
    expected = SHARD_HEADER_BYTES + SHARD_TOKEN_BYTES * num_tokens
    if size < expected:
        have = (size - SHARD_HEADER_BYTES) // SHARD_TOKEN_BYTES
        raise ShardError(
            f"{path}: truncated: header declares {num_tokens} tokens ({expected} bytes) "
            f"but the file has {size} bytes ({have} tokens)")
    if size > expected:
        raise ShardError(
            f"{path}: size mismatch: header declares {num_tokens} tokens ({expected} bytes) "
            f"but the file has {size} bytes ({size - expected} trailing bytes)")
    return ShardHeader(path, magic, version, num_tokens)


def read_shard(path: str | Path) -> np.ndarray:
    """Tokens of one shard as a uint16 array (validated)."""
    header = read_shard_header(path)
    tokens = np.fromfile(header.path, dtype="<u2", count=header.num_tokens, offset=SHARD_HEADER_BYTES)
    if tokens.size != header.num_tokens:  # the file changed under us
        raise ShardError(f"{header.path}: truncated while reading ({tokens.size} of {header.num_tokens} tokens)")
    return tokens.astype(np.uint16, copy=False)


def write_shard(path: str | Path, tokens) -> Path:
    """Write tokens (ints in 0..65535) as one shard. Returns the path."""
    path = Path(path)
    array = np.asarray(tokens)
    if array.ndim != 1:
        raise ShardError(f"{path}: tokens must be a 1-D sequence, got shape {array.shape}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > SHARD_MAX_TOKEN_ID):
        raise ShardError(f"{path}: token ids must lie in 0..{SHARD_MAX_TOKEN_ID} to fit uint16 "
                         f"(got {int(array.min())}..{int(array.max())})")
    header = np.zeros(SHARD_HEADER_WORDS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, array.size
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(array.astype("<u2").tobytes())
    return path


def list_shards(pattern: str | Path) -> list[Path]:
    """Shard files matching a glob pattern, sorted by name. Errors if none match."""
    paths = sorted(Path(p) for p in glob.glob(str(pattern)))
    if not paths:
        raise ShardError(f"{pattern}: no shard files match this pattern")
    return paths


def load_tokens(pattern: str | Path, vocab_size: int | None = None, tokenizer_name: str = "the tokenizer") -> np.ndarray:
    """Concatenated tokens of every shard matching ``pattern``, checked against ``vocab_size``."""
    parts = []
    for path in list_shards(pattern):
        tokens = read_shard(path)
        if vocab_size is not None:
            check_token_range(tokens, vocab_size, path, tokenizer_name)
        parts.append(tokens)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def check_token_range(tokens: np.ndarray, vocab_size: int, path: str | Path, tokenizer_name: str = "the tokenizer") -> None:
    """Error naming the shard when it holds a token id outside the tokenizer's vocabulary."""
    if tokens.size == 0:
        return
    largest = int(tokens.max())
    if largest >= vocab_size:
        position = int(np.argmax(tokens >= vocab_size))
        raise ShardError(
            f"{path}: token id {largest} (first out-of-range id at position {position}) does not fit "
            f"the vocabulary of {vocab_size} of {tokenizer_name}: tokenizer and shards do not match")

"""Int8 quantization and the zstandard-compressed artifact.

Every 2-D floating-point tensor larger than ``keep_float_max_numel`` values is stored as int8
with one float16 scale per row (symmetric: scale = max|row| / 127). Smaller and 1-D float
tensors are stored as float16, everything else unchanged. The container is deliberately
simple and deterministic (no pickle): the magic ``PGQ1``, a little-endian uint32 header length,
a JSON header listing each tensor (name, kind, dtype, shape, byte offset and length), then the
raw tensor bytes; the whole container is compressed with zstandard.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np
import torch
import zstandard

ARTIFACT_MAGIC = b"PGQ1"
INT8_MAX = 127


@dataclass(frozen=True)
class ArtifactStats:
    compressed_bytes: int  # what counts against the 16,000,000-byte cap
    payload_bytes: int  # the uncompressed container
    raw_float_bytes: int  # the state dict at float32


def _numpy_dtype(name: str) -> np.dtype:
    return {"int8": np.dtype("<i1"), "float16": np.dtype("<f2"), "float32": np.dtype("<f4"),
            "int64": np.dtype("<i8"), "int32": np.dtype("<i4"), "bool": np.dtype("?")}[name]


def quantize_tensor(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float16 per-row scales) of a 2-D tensor."""
    w = weight.detach().float().cpu()
    scale = (w.abs().amax(dim=1) / INT8_MAX).clamp_min(1e-12)
    q = torch.round(w / scale[:, None]).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    return q, scale.to(torch.float16)


def dequantize_tensor(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]


def pack_state_dict(state_dict: dict[str, torch.Tensor], keep_float_max_numel: int = 16384) -> bytes:
    """The uncompressed artifact container of a state dict (see module doc)."""
    entries, blobs, offset = [], [], 0

    def add(name: str, kind: str, array: np.ndarray, extra: dict | None = None) -> None:
        nonlocal offset
        data = np.ascontiguousarray(array).tobytes()
        entry = {"name": name, "kind": kind, "dtype": array.dtype.name, "shape": list(array.shape),
                 "offset": offset, "length": len(data)}
        entries.append(entry | (extra or {}))
        blobs.append(data)
        offset += len(data)

    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu()
        if tensor.is_floating_point() and tensor.ndim == 2 and tensor.numel() > keep_float_max_numel:
            q, scale = quantize_tensor(tensor)
            add(name, "int8_rows", q.numpy())
            add(name + ".__scale", "row_scale", scale.numpy())
        elif tensor.is_floating_point():
            add(name, "float16", tensor.to(torch.float16).numpy())
        else:
            add(name, "raw", tensor.numpy())
    header = json.dumps({"format": 1, "tensors": entries}, sort_keys=True, separators=(",", ":")).encode()
    return ARTIFACT_MAGIC + struct.pack("<I", len(header)) + header + b"".join(blobs)


def unpack_state_dict(payload: bytes) -> dict[str, torch.Tensor]:
    """Float32 state dict from an uncompressed container (int8 rows dequantized)."""
    if payload[:4] != ARTIFACT_MAGIC:
        raise ValueError("not a reference artifact (bad magic)")
    (header_len,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + header_len])
    body = memoryview(payload)[8 + header_len:]
    arrays = {}
    for entry in header["tensors"]:
        dtype = _numpy_dtype(entry["dtype"])
        raw = body[entry["offset"]:entry["offset"] + entry["length"]]
        arrays[entry["name"]] = (entry["kind"], np.frombuffer(raw, dtype=dtype).reshape(entry["shape"]).copy())
    state = {}
    for name, (kind, array) in arrays.items():
        if kind == "row_scale":
            continue
        if kind == "int8_rows":
            scale = torch.from_numpy(arrays[name + ".__scale"][1])
            state[name] = dequantize_tensor(torch.from_numpy(array), scale)
        elif kind == "float16":
            state[name] = torch.from_numpy(array).float()
        else:
            state[name] = torch.from_numpy(array)
    return state


def compress_artifact(state_dict: dict[str, torch.Tensor], level: int = 22,
                      keep_float_max_numel: int = 16384) -> tuple[bytes, ArtifactStats]:
    payload = pack_state_dict(state_dict, keep_float_max_numel)
    blob = zstandard.ZstdCompressor(level=level).compress(payload)
    raw = sum(t.numel() * 4 if t.is_floating_point() else t.numel() * t.element_size() for t in state_dict.values())
    return blob, ArtifactStats(len(blob), len(payload), int(raw))


def decompress_artifact(blob: bytes) -> dict[str, torch.Tensor]:
    return unpack_state_dict(zstandard.ZstdDecompressor().decompress(blob))

"""Writing self-extracting wrappers (lzma, zlib, gzip, bz2, brotli with base85, base64 ...) around
a source: the inverse of the unwrapper. The audit never uses it. Rule examples
(``CodeCase(wrap=...)``, PG202's examples), the test suite and the benchmarks build wrapped
files with it, which is why it ships with the package rather than under tests/."""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import zlib
from typing import Callable

from . import unwrap_interpreter  # its brotli loader, looked up at call time (tests replace it)

# ---------------------------------------------------------------------------------------
# Building wrappers (tests, fixtures and docs)

_WRAPPER_COMPRESSORS: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    # name: (import line, compress, decode expression around {x})
    "lzma-raw": ("lzma as L", lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]),
                 'L.decompress({x},format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2,"preset":9|L.PRESET_EXTREME}}])'),
    "lzma": ("lzma as L", lambda b: lzma.compress(b, preset=9), "L.decompress({x})"),
    "lzma-alone": ("lzma as L", lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE), "L.decompress({x},format=L.FORMAT_ALONE)"),
    "zlib": ("zlib as Z", lambda b: zlib.compress(b, 9), "Z.decompress({x})"),
    "zlib-raw": ("zlib as Z", lambda b: _deflate_raw(b), "Z.decompress({x},-15)"),
    "gzip": ("gzip as G", lambda b: _gzip_compress(b), "G.decompress({x})"),
    "bz2": ("bz2 as Z", lambda b: bz2.compress(b, 9), "Z.decompress({x})"),
    "brotli": ("brotli as R", lambda b: _brotli_compress(b), "R.decompress({x})"),
    "none": ("", lambda b: b, "{x}"),
}
_WRAPPER_ENCODERS: dict[str, tuple[str, Callable[[bytes], str], str]] = {
    "b85": ("base64 as B", lambda b: base64.b85encode(b).decode("ascii"), "B.b85decode({s})"),
    "b64": ("base64 as B", lambda b: base64.b64encode(b).decode("ascii"), "B.b64decode({s})"),
    "urlsafe-b64": ("base64 as B", lambda b: base64.urlsafe_b64encode(b).decode("ascii"), "B.urlsafe_b64decode({s})"),
    "a85": ("base64 as B", lambda b: base64.a85encode(b).decode("ascii"), "B.a85decode({s})"),
    "b32": ("base64 as B", lambda b: base64.b32encode(b).decode("ascii"), "B.b32decode({s})"),
    "hex": ("", lambda b: b.hex(), "bytes.fromhex({s})"),
}


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _gzip_compress(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _brotli_compress(data: bytes) -> bytes:
    brotli = unwrap_interpreter._load_brotli()
    if brotli is None:
        raise ValueError("unsupported codec brotli (the brotli module is not installed)")
    return brotli.compress(data)


def _python_literal(text: str) -> str:
    """A double-quoted literal for ``text`` (escapes only what needs escaping)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_wrapper(source: str, *, codec: str = "lzma-raw+b85", line_width: int | None = None, decode_text: bool = False) -> str:
    """A self-extracting wrapper for ``source`` in the style submissions use.

    ``codec`` is "<compressor>+<encoder>" with compressor in lzma-raw, lzma, lzma-alone, zlib,
    zlib-raw, gzip, bz2, brotli, none and encoder in b85, b64, urlsafe-b64, a85, b32, hex;
    a lone encoder ("b64") means no compression. ``line_width`` splits the literal into
    implicitly concatenated lines; ``decode_text`` adds ``.decode()`` before exec.
    """
    compressor_name, _, encoder_name = codec.rpartition("+")
    compressor_name = compressor_name or "none"
    if compressor_name not in _WRAPPER_COMPRESSORS or encoder_name not in _WRAPPER_ENCODERS:
        raise ValueError(f"unknown wrapper codec {codec!r}")
    compress_import, compress, compress_expr = _WRAPPER_COMPRESSORS[compressor_name]
    encode_import, encode, encode_expr = _WRAPPER_ENCODERS[encoder_name]
    encoded = encode(compress(source.encode("utf-8")))
    if line_width:
        chunks = [encoded[i:i + line_width] for i in range(0, len(encoded), line_width)] or [""]
        literal = "(\n" + "\n".join("    " + _python_literal(chunk) for chunk in chunks) + "\n)"
    else:
        literal = _python_literal(encoded)
    expression = compress_expr.format(x=encode_expr.format(s=literal))
    if decode_text:
        expression += ".decode()"
    imports = ",".join(i for i in (compress_import, encode_import) if i)
    header = f"import {imports}\n" if imports else ""
    return f"{header}exec({expression})\n"

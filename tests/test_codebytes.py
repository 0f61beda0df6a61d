"""Counted code bytes (pgolf_audit.codebytes): the entry plus every local file it reaches.

Record folders are built in memory (path -> text) from short training-script fragments
written for these tests; sizes are the UTF-8 sizes of those texts.
"""

from __future__ import annotations

import builtins
import sys

import pytest

from pgolf_audit.code_references import _ModuleScanner, _top_level_texts
from pgolf_audit.codebytes import CountedFile, account_code, account_folder
from pgolf_audit.cstutil import parse_module
from pgolf_audit.lines import LineTable
from pgolf_audit.unwrap import UnwrapError, unwrap
from pgolf_audit.wrappers import make_wrapper

ENTRY = "train_gpt.py"

# The readable trainer of an n-gram tilt submission in the style of #1514: a helper module,
# a native kernel compiled at run time, a quantisation package and brotli compression.
NGRAM_TRAINER = '''"""SP8192 trainer with an n-gram tilt expert."""
import os
import sys
import time

import brotli
import torch
import torch.nn.functional as F
from torch.utils.cpp_extension import load

import ngram_tilt
from quant.gptq import collect_hessians

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_SOURCES = [os.path.join(HERE, "ngram", "fused_expert_kernel.cpp")]


def build_fused_expert():
    return load(name="fused_expert", sources=KERNEL_SOURCES, extra_cflags=["-O3"], verbose=False)


def serialize(state):
    blob = torch.save(state, "final_model.pt")
    return brotli.compress(open("final_model.pt", "rb").read(), quality=11)


def main():
    expert = build_fused_expert()
    tilt = ngram_tilt.NgramTilt(order=4, buckets=1 << 20)
    t0 = time.perf_counter()
    code_bytes = len(open(__file__).read().encode())
    print(f"Code size: {code_bytes} train_time:{(time.perf_counter() - t0) * 1000:.0f}ms", expert, tilt)


if __name__ == "__main__":
    main()
'''

NGRAM_TILT = '''"""Hashed n-gram tilt applied to the model logits at eval time."""
import torch

from ngram_hash import rolling_hash


class NgramTilt:
    def __init__(self, order, buckets):
        self.order = order
        self.table = torch.zeros(buckets)

    def __call__(self, tokens, logits):
        keys = rolling_hash(tokens, self.order) % self.table.numel()
        return logits + self.table[keys].unsqueeze(-1)
'''

NGRAM_HASH = '''def rolling_hash(tokens, order, base=1000003):
    h = tokens.clone()
    for shift in range(1, order):
        h = h * base + tokens.roll(shift, dims=-1)
    return h
'''

FUSED_KERNEL_CPP = '''#include <torch/extension.h>
#include "fused_expert.h"

torch::Tensor fused_expert_forward(torch::Tensor logits, torch::Tensor table) {
    return logits + table.index_select(0, logits.argmax(-1));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("forward", &fused_expert_forward); }
'''

QUANT_INIT = '"""Post-training quantisation helpers."""\n'
QUANT_GPTQ = '''import torch

from .packing import pack_int6


def collect_hessians(model, batches):
    hessians = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            hessians[name] = torch.zeros(module.in_features, module.in_features)
    return hessians, pack_int6
'''
QUANT_PACKING = "def pack_int6(values):\n    return bytes(int(v) & 63 for v in values)\n"
SHADOW_BROTLI = '"""Pure-Python stand-in for brotli, shipped in the record folder."""\n\ndef compress(data, quality=11):\n    return data\n'


def make_folder(files: dict[str, str]):
    sizes = {path: len(text.encode()) for path, text in files.items()}
    reads: list[str] = []

    def read_text(path: str) -> str | None:
        reads.append(path)
        return files.get(path)

    read_text.reads = reads  # type: ignore[attr-defined]
    return sizes, read_text


def ngram_record(entry_text: str) -> dict[str, str]:
    return {
        ENTRY: entry_text,
        "ngram_tilt.py": NGRAM_TILT,
        "ngram_hash.py": NGRAM_HASH,
        "ngram/fused_expert_kernel.cpp": FUSED_KERNEL_CPP,
        "ngram/fused_expert.h": "#pragma once\n#include <torch/extension.h>\n",
        "quant/__init__.py": QUANT_INIT,
        "quant/gptq.py": QUANT_GPTQ,
        "quant/packing.py": QUANT_PACKING,
        "brotli.py": SHADOW_BROTLI,
        "train_gpt_human.py": NGRAM_TRAINER,
        "prepare_caseops_data.py": "import sentencepiece as spm\nprint(spm)\n",
        "old/fused_expert_v1.cu": "__global__ void k() {}\n",
        "README.md": "# SP8192 + n-gram tilt\nSee train_gpt.py and ngram_tilt.py.\n",
        "submission.json": "{}",
    }


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def by_path(files: list[CountedFile]) -> dict[str, CountedFile]:
    return {f.path: f for f in files}


def test_wrapped_entry_with_helpers_kernel_package_and_shadowing_library():
    wrapper = make_wrapper(NGRAM_TRAINER, codec="lzma-raw+b85")
    record = ngram_record(wrapper)
    sizes, read_text = make_folder(record)
    unwrapped = unwrap(ENTRY, wrapper, read_text)
    accounting = account_code(unwrapped, sizes, read_text)

    paths = [f.path for f in accounting.files]
    assert paths[0] == ENTRY
    assert set(paths) == {
        ENTRY, "ngram_tilt.py", "ngram_hash.py", "ngram/fused_expert_kernel.cpp", "ngram/fused_expert.h",
        "quant/__init__.py", "quant/gptq.py", "quant/packing.py", "brotli.py",
    }
    counted = by_path(accounting.files)
    assert counted[ENTRY] == CountedFile(ENTRY, len(wrapper), "entry script", None, None)
    # lines are lines of the unwrapped trainer, not of the one-line wrapper
    assert counted["ngram_tilt.py"].referenced_from == ENTRY
    assert counted["ngram_tilt.py"].line == line_of(NGRAM_TRAINER, "import ngram_tilt")
    assert counted["ngram_tilt.py"].reason == "imported module"
    assert counted["ngram_hash.py"].referenced_from == "ngram_tilt.py"
    assert counted["ngram_hash.py"].line == line_of(NGRAM_TILT, "from ngram_hash")
    kernel = counted["ngram/fused_expert_kernel.cpp"]
    assert kernel.reason == "native source built by torch.utils.cpp_extension.load"
    assert kernel.line == line_of(NGRAM_TRAINER, "return load(")
    assert counted["ngram/fused_expert.h"].reason == "#include'd by ngram/fused_expert_kernel.cpp"
    assert counted["ngram/fused_expert.h"].line == 2
    assert counted["quant/__init__.py"].reason == "imported package"
    assert counted["quant/gptq.py"].line == line_of(NGRAM_TRAINER, "from quant.gptq")
    assert counted["quant/packing.py"].referenced_from == "quant/gptq.py"
    assert counted["brotli.py"].reason == "imported module, shadowing the library brotli"

    assert accounting.total_bytes == sum(sizes[p] for p in paths)
    assert accounting.entry_bytes == len(wrapper)
    assert accounting.unwrapped_entry_bytes == len(NGRAM_TRAINER.encode())
    assert accounting.helper_bytes == accounting.total_bytes - len(wrapper)
    assert accounting.uncounted_candidates == ["old/fused_expert_v1.cu", "prepare_caseops_data.py", "train_gpt_human.py"]
    assert accounting.problems == []
    # the code never reads data or documents, only what it reaches
    assert "README.md" not in read_text.reads and "final_model.pt" not in read_text.reads


def test_exec_stub_counts_the_file_it_runs():
    stub = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    record = {ENTRY: stub, "train_gpt_decode.py": NGRAM_HASH + "\nimport ngram_tilt\n", "ngram_tilt.py": NGRAM_TILT,
              "ngram_hash.py": NGRAM_HASH}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, stub, read_text), sizes, read_text)
    counted = by_path(accounting.files)
    assert list(counted)[:2] == [ENTRY, "train_gpt_decode.py"]
    assert counted["train_gpt_decode.py"] == CountedFile(
        "train_gpt_decode.py", sizes["train_gpt_decode.py"], "run by the exec stub in train_gpt.py", ENTRY, 1)
    assert counted["ngram_tilt.py"].referenced_from == "train_gpt_decode.py"
    assert accounting.total_bytes == sum(sizes.values())
    assert accounting.entry_bytes == 74 and accounting.uncounted_candidates == []


def test_wrapped_helper_is_unwrapped_and_followed():
    helper = make_wrapper("import numpy as np\nfrom ngram_hash import rolling_hash\n", codec="zlib+b64")
    trainer = "import torch\nimport ngram_tilt\n\ndef main():\n    return ngram_tilt\n"
    record = {ENTRY: trainer, "ngram_tilt.py": helper, "ngram_hash.py": NGRAM_HASH}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, trainer, read_text), sizes, read_text)
    counted = by_path(accounting.files)
    assert counted["ngram_tilt.py"].bytes == len(helper)  # raw on-disk bytes, not the unwrapped size
    assert counted["ngram_hash.py"].referenced_from == "ngram_tilt.py" and counted["ngram_hash.py"].line == 2


def test_dynamic_loading_subprocess_builds_and_path_expressions():
    trainer = '''import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from torch.utils.cpp_extension import load

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

import rope_tables

fast = importlib.import_module("fast_kernels")
spec = importlib.util.spec_from_file_location("triton_mm", HERE / "kernels" / "triton_mm.py")


def compile_ngram_library():
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", "csrc/ngram.cpp", "-o", "libngram.so"], check=True)


def cuda_source():
    return (HERE / "csrc" / "rope.cu").read_text()


def bias_source(here):
    return open(f"{here}/csrc/bias.cu").read()


def build_attention_kernel():
    # the kernel directory is bound further down the file
    return load(name="attn", sources=[os.path.join(KERNEL_DIR, "flash_rope.cu")])


KERNEL_DIR = os.path.join(os.path.dirname(__file__), "cuda")
'''
    record = {
        ENTRY: trainer,
        "lib/rope_tables.py": "TABLE = [0.5, 0.25]\n",
        "fast_kernels.py": "def fused(x):\n    return x\n",
        "kernels/triton_mm.py": "import triton\n",
        "csrc/ngram.cpp": "int ngram() { return 0; }\n",
        "csrc/rope.cu": "__global__ void rope() {}\n",
        "csrc/bias.cu": "__global__ void bias() {}\n",
        "plugins/lowrank.py": "RANK = 4\n",
        "cuda/flash_rope.cu": "__global__ void flash_rope() {}\n",
    }
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, trainer, read_text), sizes, read_text)
    counted = by_path(accounting.files)
    assert counted["lib/rope_tables.py"].reason == "imported module"
    assert counted["fast_kernels.py"].line == line_of(trainer, "fast = importlib")
    assert counted["kernels/triton_mm.py"].reason == "module loaded by importlib"
    assert counted["csrc/ngram.cpp"].reason == "source compiled by a subprocess call"
    assert counted["csrc/rope.cu"].reason == "named by a path expression"
    assert counted["csrc/bias.cu"].reason == "named by an f-string"
    assert counted["cuda/flash_rope.cu"].reason == "native source built by torch.utils.cpp_extension.load"
    assert counted["cuda/flash_rope.cu"].line == line_of(trainer, 'return load(name="attn"')
    assert accounting.uncounted_candidates == ["plugins/lowrank.py"]
    assert accounting.problems == []


# Code run from a name or text computed at run time: which file runs is not in the code.
COMPUTED_RUNS = {
    "def optional_plugin(name):\n    return importlib.import_module(f\"plugins.{name}\")\n":
        ("dynamic import", 'importlib.import_module(f"plugins.{name}")'),
    "def run_overrides(path):\n    exec(open(path).read(), {})\n":
        ("exec of a file", "exec(open(path).read(), {})"),
    "def specialise_kernels(width):\n    template = KERNEL_TEMPLATE.format(width=width)\n"
    "    exec(compile(template, \"<kernels>\", \"exec\"), globals())\n":
        ("exec of code built at run time", 'exec(compile(template, "<kernels>", "exec"), globals())'),
}


@pytest.mark.parametrize("snippet", list(COMPUTED_RUNS), ids=[kind for kind, _ in COMPUTED_RUNS.values()])
def test_code_run_from_a_computed_name_fails_closed(snippet):
    # the unwrapper refuses the script (the audit cannot pass), and a helper that does it is
    # counted but its references are not followed
    kind, call = COMPUTED_RUNS[snippet]
    trainer = "import importlib\n\n\n" + snippet
    record = {ENTRY: "import plugin_loader\n", "plugin_loader.py": trainer, "plugins/lowrank.py": "RANK = 4\n"}
    sizes, read_text = make_folder(record)
    with pytest.raises(UnwrapError, match="runs code that is not a literal") as info:
        unwrap(ENTRY, trainer, read_text)
    assert call in str(info.value) and info.value.line == line_of(trainer, call)
    accounting = account_code(unwrap(ENTRY, record[ENTRY], read_text), sizes, read_text)
    assert [f.path for f in accounting.files] == [ENTRY, "plugin_loader.py"]
    assert accounting.uncounted_candidates == ["plugins/lowrank.py"]
    assert len(accounting.problems) == 1 and accounting.problems[0].startswith(
        f"plugin_loader.py could not be unwrapped (plugin_loader.py line {line_of(trainer, call)}: runs code that is not a literal")
    # the reference scan names the call too, should such code reach it
    module = parse_module(trainer)
    scanner = _ModuleScanner(module, trainer, ENTRY, ENTRY, sizes)
    scanner.scan()
    assert scanner.problems and scanner.problems[0].startswith(f"{kind} at line {line_of(trainer, call)} of train_gpt.py")


def test_aliased_loader_call_is_found_in_an_otherwise_plain_function():
    trainer = '''import os
from torch.utils.cpp_extension import load as build_extension

KERNELS = [os.path.join(os.path.dirname(__file__), "csrc", "smear_gate.cu")]


def smear_gate_module():
    return build_extension(name="smear_gate", sources=KERNELS)
'''
    record = {ENTRY: trainer, "csrc/smear_gate.cu": "__global__ void smear() {}\n"}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, trainer, read_text), sizes, read_text)
    kernel = accounting.files[1]
    assert kernel.path == "csrc/smear_gate.cu"
    assert kernel.reason == "native source built by torch.utils.cpp_extension.load"
    assert kernel.line == 8


def test_relative_imports_and_their_problems():
    record = {
        ENTRY: "from model.blocks import Block\nfrom .. import sibling_record\n",
        "model/__init__.py": "",
        "model/blocks.py": "from . import attention\nfrom .norms import RMSNorm\nfrom .. import outside\nfrom .missing import x\n",
        "model/attention.py": "def attend(q, k, v):\n    return q\n",
        "model/norms.py": "class RMSNorm:\n    pass\n",
    }
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, record[ENTRY], read_text), sizes, read_text)
    assert [f.path for f in accounting.files] == [
        ENTRY, "model/__init__.py", "model/blocks.py", "model/attention.py", "model/norms.py"]
    assert accounting.problems == [
        "relative import at line 2 of train_gpt.py leaves the record folder",
        "relative import .. at line 3 of model/blocks.py could not be resolved",
        "relative import .missing at line 4 of model/blocks.py could not be resolved",
    ]


def test_docstrings_and_library_imports_do_not_count():
    trainer = '''"""Readable copy of the wrapped script lives in train_gpt_human.py (not run)."""
import numpy as np
import sentencepiece as spm
import flash_attn_interface


def log_config():
    """See prepare_caseops_data.py for how shards were built."""
    print("tokenizer: fineweb_8192_bpe.model")
'''
    record = {ENTRY: trainer, "train_gpt_human.py": "x = 1\n", "prepare_caseops_data.py": "y = 2\n",
              "fineweb_8192_bpe.model": "\x00binary"}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, trainer, read_text), sizes, read_text)
    assert [f.path for f in accounting.files] == [ENTRY]
    assert accounting.uncounted_candidates == ["prepare_caseops_data.py", "train_gpt_human.py"]


def test_each_file_is_parsed_once_and_the_unwrapped_module_is_reused():
    wrapper = make_wrapper(NGRAM_TRAINER)
    record = ngram_record(wrapper)
    record["quant/packing.py"] = "from quant.gptq import collect_hessians\n" + QUANT_PACKING  # an import cycle
    sizes, read_text = make_folder(record)
    unwrapped = unwrap(ENTRY, wrapper, read_text)
    assert unwrapped.module is not None
    parsed: list[str] = []

    def parse(path: str, source: str):
        parsed.append(path)
        return parse_module(source)

    accounting = account_code(unwrapped, sizes, read_text, parse)
    assert sorted(parsed) == sorted(["ngram_tilt.py", "ngram_hash.py", "quant/__init__.py", "quant/gptq.py",
                                     "quant/packing.py", "brotli.py"])
    assert len(accounting.files) == 9


def test_unreadable_or_broken_helpers_are_reported_but_counted():
    trainer = "import ngram_tilt\nimport quant_utils\n"
    corrupt = 'import lzma, base64\nexec(lzma.decompress(base64.b85decode("00000")))\n'
    record = {ENTRY: trainer, "ngram_tilt.py": "def broken(:\n", "quant_utils.py": corrupt}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, trainer, read_text), sizes, read_text)
    assert [f.path for f in accounting.files] == [ENTRY, "ngram_tilt.py", "quant_utils.py"]
    assert len(accounting.problems) == 2
    assert accounting.problems[0].startswith("ngram_tilt.py could not be parsed")
    assert accounting.problems[1].startswith("quant_utils.py could not be unwrapped (quant_utils.py line 2: lzma data")


def test_wrapper_layer_imports_of_local_modules_count():
    wrapper = "import lzma as L, base64 as B\nimport warmup_patch\n" + make_wrapper(NGRAM_HASH).split("\n", 1)[1]
    record = {ENTRY: wrapper, "warmup_patch.py": "import torch\n"}
    sizes, read_text = make_folder(record)
    accounting = account_code(unwrap(ENTRY, wrapper, read_text), sizes, read_text)
    assert accounting.files[1] == CountedFile("warmup_patch.py", 13, "imported by the wrapper layer in train_gpt.py", ENTRY, 2)


def test_statement_texts_match_the_source():
    source = NGRAM_TRAINER + "\f\n# form feed and \u2028 inside comments\n" + NGRAM_TILT + "\n# footer comment\n"
    module = parse_module(source)
    positions = LineTable(module, source)
    texts = _top_level_texts(module, source, positions)
    assert len(texts) == len(module.body)
    # every line from the first statement on belongs to exactly one statement's text
    first = positions.top_start_lines()[id(module.body[0])]
    assert "".join(texts) == "\n".join(source.split("\n")[first - 1:])
    for top, text in zip(module.body, texts):
        assert module.code_for_node(top.with_changes(leading_lines=())).strip() in text
    assert texts[-1].endswith("\n# footer comment\n")


def test_account_folder_on_disk(tmp_path):
    record = tmp_path / "2026-04-20_SP8192_NgramTilt"
    for path, text in ngram_record(make_wrapper(NGRAM_TRAINER, codec="lzma+b85")).items():
        target = record / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (record / "__pycache__").mkdir()
    (record / "__pycache__" / "ngram_tilt.cpython-311.pyc").write_bytes(b"\x00")
    outside = tmp_path / "elsewhere.py"
    outside.write_text("SECRET = 1\n")
    (record / "linked_helper.py").symlink_to(outside)
    unwrapped, accounting = account_folder(record / ENTRY)
    assert unwrapped.wrapped and unwrapped.layers[0].codecs == ("base85", "lzma-xz")
    assert len(accounting.files) == 9
    assert accounting.total_bytes == sum((record / f.path).stat().st_size for f in accounting.files)
    assert "linked_helper.py" not in accounting.uncounted_candidates  # links out of the folder are not listed
    assert accounting.uncounted_candidates == ["old/fused_expert_v1.cu", "prepare_caseops_data.py", "train_gpt_human.py"]


def test_accounting_runs_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "helper_ran.marker"
    helper = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nraise SystemExit('helper executed')\n"
    record = tmp_path / "record"
    record.mkdir()
    (record / ENTRY).write_text(make_wrapper("import side_effect_helper\nimport ngram_kernels\n", codec="zlib+b85"))
    (record / "side_effect_helper.py").write_text(helper)
    (record / "ngram_kernels.py").write_text(make_wrapper(helper, codec="lzma+b64"))
    monkeypatch.syspath_prepend(str(record))
    monkeypatch.chdir(record)

    def refuse(*args, **kwargs):
        raise AssertionError("code accounting called exec/eval/compile")

    for name in ("exec", "eval", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    _, accounting = account_folder(record / ENTRY)
    assert [f.path for f in accounting.files] == [ENTRY, "side_effect_helper.py", "ngram_kernels.py"]
    assert accounting.problems == []
    assert not marker.exists()
    assert "side_effect_helper" not in sys.modules and "ngram_kernels" not in sys.modules

"""Worst-case inputs of a hostile submitter, timed: each must finish within seconds.

Builds every input in a temporary directory (from the bundled example record) and times:

* ``_finish_metrics``: a log with 20,000 repeated final metric lines, and one with 20,000
  distinct ones (was quadratic: two minutes);
* the code accounting of a 600 KB script of 100,000 ``x = 1`` lines, on an already parsed
  module (was quadratic: 4.7 minutes and 1 GB), and the full CLI audit of a folder holding
  that script (refused before parsing: more lines than any real script);
* the full CLI audit of folders whose code crashes or stalls libcst (2,000 nested
  parentheses, 5,000 nested calls, a 10,000- and a 20,000-term sum) and of a readable script
  with an embedded payload;
* the log and README parsers on lines built to make a regular expression backtrack (each
  repeated 20 or 10 times; goal: under one second each), a 50 MB single-line log and a long
  README.

    python benchmarks/bench_hostile.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import lzma
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pgolf_audit.cases import build_case_folder
from pgolf_audit.codebytes import account_code
from pgolf_audit.cstutil import parse_module
from pgolf_audit.parsers.logs import parse_log
from pgolf_audit.parsers.readme import parse_readme
from pgolf_audit.rulebase import FolderCase
from pgolf_audit.unwrap import UnwrappedCode

LIMIT_S = 10.0  # "within seconds"
LINE_LIMIT_S = 1.0  # one pathological line, repeated

# Lines shaped to make a log or README pattern backtrack (long runs of what a pattern repeats,
# a prefix that almost matches, then no match).
PATHOLOGICAL_LOG_LINES = [
    "final " + "a b:1 " * 3000, "x " * 9000 + "val_loss:1 val_bpb:2", "step:1/2 " + "t" * 19_000,
    "a" * 19_000 + " val_loss:1.0 val_bpb:", "budget:" + "1" * 19_000, "Total submission size " + "x " * 9000 + ": 5 bytes",
    "seed=" + "9" * 19_000, "|" + " 0  NVIDIA " * 1500, "=" * 19_000, "params:1 " + "ws:1 " * 3500,
]
PATHOLOGICAL_README_LINES = ["lzma " * 3900, "**" + "a" * 19_000, "** a " * 3900, "val_bpb " * 2400,
                             "| " * 9000 + "|", "seed 1 " * 2800, "exceeded " * 2100, "1.234 " * 3200]


def timed(label: str, action) -> float:
    start = time.perf_counter()
    outcome = action()
    seconds = time.perf_counter() - start
    print(f"{label:<58} {seconds:7.2f} s  {outcome}")
    return seconds


def repeated_metric_lines() -> str:
    return "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.12345678\n" * 20000


def distinct_metric_lines() -> str:
    return "".join(f"final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:{1 + i / 1e6:.8f} eval_time:{i}ms\n"
                   for i in range(20000))


def code_accounting(source: str) -> str:
    module = parse_module(source)
    code = UnwrappedCode("train_gpt.py", len(source), "train_gpt.py", source, [], module)
    start = time.perf_counter()
    accounting = account_code(code, {"train_gpt.py": len(source)}, lambda _: None, parse=lambda _p, _s: module)
    return f"{accounting.total_bytes:,} counted bytes; accounting alone {time.perf_counter() - start:.2f} s"


def cli_audit(folder: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "pgolf_audit", "--format", "text", str(folder)],
                          capture_output=True, text=True, timeout=600)
    first = done.stdout.splitlines()[0] if done.stdout else done.stderr.strip()[:80]
    return f"exit {done.returncode}: {first.split()[0] if first else '?'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pgolf-hostile-"))
    payload = base64.b85encode(lzma.compress(b"import os\nos.system('true')\n")).decode()
    readable = "import lzma, base64\n" + "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(400))
    scripts = {
        "2026-01-01_NestedParens": "x = " + "(" * 2000 + "1" + ")" * 2000 + "\n",
        "2026-01-02_NestedCalls": "x = " + "f(" * 5000 + "1" + ")" * 5000 + "\n",
        "2026-01-03_Sum10k": "x = " + "+".join(["1"] * 10000) + "\n",
        "2026-01-04_Sum20k": "x = " + "+".join(["1"] * 20000) + "\n",
        "2026-01-05_HundredThousandLines": "x = 1\n" * 100000,
        "2026-01-06_EmbeddedPayload": readable + f"exec(lzma.decompress(base64.b85decode({payload!r})))\n" + readable,
    }
    folders = {name: build_case_folder(FolderCase(name, edits={"train_gpt.py": text}, folder_name=name), root)
               for name, text in scripts.items()}
    worst = 0.0
    worst = max(worst, timed("log: 20,000 repeated final metric lines",
                             lambda: f"{len(parse_log(repeated_metric_lines(), 'train.log').runs[0].metrics):,} metrics"))
    worst = max(worst, timed("log: 20,000 distinct final metric lines",
                             lambda: f"{len(parse_log(distinct_metric_lines(), 'train.log').runs[0].metrics):,} metrics"))
    timed("code accounting: 100,000 'x = 1' lines (parse + accounting)", lambda: code_accounting(scripts["2026-01-05_HundredThousandLines"]))
    worst = max(worst, timed("log: one 50 MB line", lambda: f"{parse_log(b'val_bpb:1.0 ' * 4_200_000, 'huge.log').n_lines} line"))
    slowest_line = 0.0
    for i, line in enumerate(PATHOLOGICAL_LOG_LINES):
        slowest_line = max(slowest_line, timed(f"log: pathological line {i} x20", lambda line=line: f"{len(parse_log((line + chr(10)) * 20, 'x.log').runs)} runs"))
    for i, line in enumerate(PATHOLOGICAL_README_LINES):
        slowest_line = max(slowest_line, timed(f"README: pathological line {i} x10", lambda line=line: type(parse_readme((line + chr(10)) * 10)).__name__))
    print(f"slowest pathological line: {slowest_line:.2f} s (goal: under {LINE_LIMIT_S:.0f} s each)")
    for name, folder in folders.items():
        worst = max(worst, timed(f"audit: {name}", lambda folder=folder: cli_audit(folder)))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    print(f"slowest: {worst:.2f} s (goal: under {LIMIT_S:.0f} s each)")
    return 0 if worst < LIMIT_S and slowest_line < LINE_LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())

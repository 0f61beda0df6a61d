"""Derive the reference val_bpb / val_loss ratio of each challenge tokenizer from record logs.

For a fixed tokenizer scored on the full validation set, every correct evaluator reports

    val_bpb / val_loss = tokens / (bytes * ln 2)

so the ratio is a property of the validation token set and its byte count, not of the
model. This script reads every log of a records corpus (the merged record folders of the
challenge, data only), keeps the post-training metric lines printed with at least eight
decimals (the ``*_exact`` twins and the 8-decimal TTT/diagnostic lines), classifies each log
by tokenizer, and writes ``rules/tracks/bpb_ratios.toml``: per tokenizer the reference ratio
(the median of the modal 6-decimal bin), the spread, the distinct values, the validation
token counts seen, and the folders and lines counted.

Run:  python -m pgolf_audit.reference_impl.derive_bpb_ratios --corpus ../shared/corpus \
          --out rules/tracks/bpb_ratios.toml

Pure standard library: the log reader below is a small regex reader of its own that follows
the line rules of docs/log_formats.md (epoch prefix stripped, source-code lines skipped).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_COMMIT = "4908dc46f21ed3fdd08d2fdca285deb2194b9599"

NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
EPOCH_PREFIX = re.compile(r"^\d{10}\.\d{1,6} ")
FINAL_COLON = re.compile(
    rf"^(?P<label>[A-Za-z][\w\-\.]*(?: [A-Za-z][\w\-\.]*)*?)(?P<params>(?: [A-Za-z_]+:{NUM})*) "
    rf"(?:(?P<pre>sliding) )?val_loss:\s*(?P<loss>{NUM})\s+(?:sliding )?val_bpb:\s*(?P<bpb>{NUM})(?P<rest>.*)$"
)
FINAL_EQ = re.compile(
    rf"^(?P<label>[A-Za-z][\w\-]*:[\w\-]+) val_loss=(?P<loss>{NUM}) val_bpb=(?P<bpb>{NUM})(?P<rest>.*)$"
)
VAL_TOKENS = [
    re.compile(r"^val_loader:shards pattern=\S+ tokens:(?P<n>\d+)\s*$"),
    re.compile(r"^\s*val_tokens: ?(?P<n>\d+)\s*$"),
    re.compile(r"^val tokens: (?P<n>\d+)\s*$"),
]
TOKENIZER_PATH = re.compile(r"tokenizer_path[=:]\s?(?P<p>\S+\.model)\b")
DATASET_NAME = re.compile(r"\b(?:train_loader:dataset:|datasets/|data_path=\S*?/)(?P<d>fineweb10B_\w+)")
VOCAB_SIZE = re.compile(r"(?:^|\s)vocab_size[:=] ?(?P<n>\d+)\b")
CASEOPS_ENABLED = re.compile(r"\bcaseops_enabled[:=] ?(?P<v>True|False|1|0)\b")

# Lines with these characters are source code (dumps at the top of many logs), never output.
CODE_MARKERS = ("{", "(", '"', "'", "log0", "print")
MIN_DECIMALS = 8
LOG_SUFFIXES = (".log", ".txt")


def decimals(number_text: str) -> int:
    return len(number_text.split(".", 1)[1]) if "." in number_text else 0


def output_lines(path: Path) -> list[str]:
    """Lines of a log with the epoch prefix stripped and source-code lines removed."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = []
    for raw in text.splitlines():
        line = EPOCH_PREFIX.sub("", raw, count=1)
        if any(marker in line for marker in CODE_MARKERS):
            continue
        lines.append(line)
    return lines


def classify_tokenizer(lines: list[str]) -> str | None:
    """Tokenizer key (sp1024, sp4096, sp8192, sp8192_caseops, byte260, bytes256) from log hints."""
    tokenizer_files = [m.group("p") for line in lines if (m := TOKENIZER_PATH.search(line))]
    datasets = [m.group("d") for line in lines if (m := DATASET_NAME.search(line))]
    vocab_sizes = [int(m.group("n")) for line in lines if (m := VOCAB_SIZE.search(line))]
    caseops = any(m.group("v") in ("True", "1") for line in lines if (m := CASEOPS_ENABLED.search(line)))
    names = " ".join(tokenizer_files + datasets).lower()
    if caseops or "caseops" in names:
        return "sp8192_caseops"
    for name in tokenizer_files:
        if m := re.search(r"fineweb_(\d+)_bpe\.model$", name):
            return f"sp{m.group(1)}"
    for name in datasets:
        if m := re.fullmatch(r"fineweb10B_sp(\d+)", name):
            return f"sp{m.group(1)}"
        if name == "fineweb10B_byte260":
            return "byte260"
        if name == "fineweb10B_bytes":
            return "bytes256"
    if vocab_sizes:
        vocab = Counter(vocab_sizes).most_common(1)[0][0]
        return {256: "bytes256", 260: "byte260"}.get(vocab, f"sp{vocab}")
    return None


@dataclass
class RatioLine:
    folder: str
    log: str
    label: str
    val_loss: float
    val_bpb: float
    ratio: float


@dataclass
class TokenizerStats:
    lines: list[RatioLine] = field(default_factory=list)
    val_tokens: Counter = field(default_factory=Counter)


def read_log(path: Path, corpus: Path) -> tuple[str | None, list[RatioLine], list[int]]:
    lines = output_lines(path)
    tokenizer = classify_tokenizer(lines)
    rel = path.relative_to(corpus)
    folder = "/".join(rel.parts[:2])
    ratio_lines = []
    val_tokens = []
    for line in lines:
        for pattern in VAL_TOKENS:
            if m := pattern.match(line):
                val_tokens.append(int(m.group("n")))
        m = FINAL_COLON.match(line) or FINAL_EQ.match(line)
        if not m:
            continue
        loss_text, bpb_text = m.group("loss"), m.group("bpb")
        if min(decimals(loss_text), decimals(bpb_text)) < MIN_DECIMALS:
            continue
        loss, bpb = float(loss_text), float(bpb_text)
        if loss <= 0:
            continue
        ratio_lines.append(RatioLine(folder, "/".join(rel.parts[2:]), m.group("label"), loss, bpb, bpb / loss))
    return tokenizer, ratio_lines, sorted(set(val_tokens))


def collect(corpus: Path) -> tuple[dict[str, TokenizerStats], list[str]]:
    stats: dict[str, TokenizerStats] = defaultdict(TokenizerStats)
    unclassified = []
    for path in sorted(corpus.rglob("*")):
        if not path.is_file() or path.suffix not in LOG_SUFFIXES or path.name == "requirements.txt":
            continue
        tokenizer, ratio_lines, val_tokens = read_log(path, corpus)
        if not ratio_lines:
            continue
        if tokenizer is None:
            unclassified.append(str(path.relative_to(corpus)))
            continue
        stats[tokenizer].lines.extend(ratio_lines)
        for n in val_tokens:
            stats[tokenizer].val_tokens[n] += 1
    return stats, unclassified


def summarize(tokenizer: str, stats: TokenizerStats) -> dict:
    ratios = [line.ratio for line in stats.lines]
    bins = Counter(round(r, 6) for r in ratios)
    mode_bin, _ = bins.most_common(1)[0]
    in_mode = [r for r in ratios if round(r, 6) == mode_bin]
    reference = statistics.median(in_mode)
    folders = sorted({line.folder for line in stats.lines})
    logs = {(line.folder, line.log) for line in stats.lines}
    return {
        "key": tokenizer,
        "ratio": round(reference, 8),
        "bytes_per_token": round(1.0 / (reference * math.log(2)), 6),
        "lines": len(ratios),
        "logs": len(logs),
        "folders": folders,
        "mode_lines": len(in_mode),
        "spread": round(max(ratios) - min(ratios), 6),
        "min": round(min(ratios), 6),
        "max": round(max(ratios), 6),
        "distinct": sorted(((v, c) for v, c in bins.items()), key=lambda vc: (-vc[1], vc[0])),
        "val_tokens_seen": sorted(stats.val_tokens.items()),
    }


# Data the corpus cannot provide: how to recognise each tokenizer from an auditor's hints and
# which validation token count is the full canonical set (log_formats.md §6, rules.md
# R-DATA-CANONICAL-VAL). The canonical count is the one the standard evaluator logs.
TOKENIZER_IDENTITY = {
    "sp1024": {"vocab_size": 1024, "caseops": False, "canonical_val_tokens": [62021632],
               "tokenizer_files": ["fineweb_1024_bpe.model"], "datasets": ["fineweb10B_sp1024"]},
    "sp4096": {"vocab_size": 4096, "caseops": False, "canonical_val_tokens": [45508608, 45514752],
               "tokenizer_files": ["fineweb_4096_bpe.model"], "datasets": ["fineweb10B_sp4096"]},
    "sp8192": {"vocab_size": 8192, "caseops": False, "canonical_val_tokens": [40540160, 40538112],
               "tokenizer_files": ["fineweb_8192_bpe.model"], "datasets": ["fineweb10B_sp8192"]},
    "sp8192_caseops": {"vocab_size": 8192, "caseops": True, "canonical_val_tokens": [47851520, 47853343],
                       "tokenizer_files": ["fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"],
                       "datasets": ["fineweb10B_sp8192_caseops",
                                    "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"]},
    "byte260": {"vocab_size": 260, "caseops": False, "canonical_val_tokens": [151130112],
                "tokenizer_files": [], "datasets": ["fineweb10B_byte260"]},
    "bytes256": {"vocab_size": 256, "caseops": False, "canonical_val_tokens": [151076864],
                 "tokenizer_files": [], "datasets": ["fineweb10B_bytes"]},
}

HEADER = """\
# Reference val_bpb / val_loss ratios per challenge tokenizer.
#
# For a fixed tokenizer on the full validation set, val_bpb / val_loss = tokens / (bytes * ln 2).
# A logged final line whose ratio deviates from the reference by more than the tolerance was
# scored on a different token set (partial or older validation export) or with nonstandard byte
# accounting. Read by pgolf_audit.bpb_identity.
#
# GENERATED by `python -m pgolf_audit.reference_impl.derive_bpb_ratios` from the records corpus
# (openai/parameter-golf records at commit {commit}); only the [tolerance] and [[causes]]
# sections and the identity fields of each tokenizer (vocab_size, caseops, canonical_val_tokens,
# tokenizer_files, datasets) are policy written by hand in the script.
#
# Provenance: lines = post-training metric lines with >= {min_decimals} decimals in both val_loss and
# val_bpb (source-code lines skipped), ratio = median of the modal 6-decimal bin, spread = max - min
# over all lines, distinct = [6-decimal value, lines] pairs.
"""

POLICY = """\
[provenance]
corpus = "openai/parameter-golf records (data only: README, submission.json, logs)"
corpus_commit = "{commit}"
logs_read = {logs_read}
logs_with_ratio_lines = {logs_used}
lines_counted = {lines_counted}
unclassified_logs = {unclassified}
min_decimals = {min_decimals}
method = "ratio = val_bpb / val_loss per line; reference = median of the modal 6-decimal bin"

[tolerance]
# Relative deviation |measured / reference - 1| accepted as the same token and byte set. The
# corpus shows evaluator-to-evaluator differences up to 1.3e-4 on the full set (sp4096 45,514,752
# vs 45,508,608 tokens); real accounting bugs and partial sets start near 2.5e-3.
ratio_rel = 5.0e-4
# A logged val_tokens within this relative distance of a canonical count is the full set
# (covers truncation to a multiple of a long sequence length, e.g. 62,013,440 for seq 16384).
val_tokens_rel = 1.0e-3
# Printed numbers carry rounding error; the checker widens the tolerance by this many half-units
# of the last printed decimal (relative), so 4-decimal lines are not flagged for rounding alone.
rounding_half_units = 1.0

# Likely causes of a deviation, tried in order. byte_inflation = reference / measured - 1: the
# relative excess of the implied byte denominator per token over the full-set reference.
# Optional `tokenizers` limits a cause to those keys. {{pct}} is filled with the percentage.
[[causes]]
id = "leading-space-double-count"
byte_inflation_min = 0.10
byte_inflation_max = 0.30
text = "≈{{pct}}% byte inflation: leading-space byte counted twice (base-byte LUT already holds the +1)"

[[causes]]
id = "caseops-transformed-bytes"
tokenizers = ["sp8192_caseops"]
byte_inflation_min = 0.05
byte_inflation_max = 0.10
text = "≈{{pct}}% byte inflation: CaseOps transformed-piece bytes counted instead of the original-byte sidecar"

[[causes]]
id = "byte-fallback-overcount"
byte_inflation_min = 0.01
byte_inflation_max = 0.10
text = "≈{{pct}}% byte inflation: byte-fallback pieces counted as 3 bytes (or spaces falling back to E2 96 81 without a standalone ▁ piece)"

[[causes]]
id = "bytes-overcounted"
byte_inflation_min = 0.0
byte_inflation_max = 10.0
text = "≈{{pct}}% byte inflation: nonstandard byte accounting (bytes over-counted, bpb deflated)"

[[causes]]
id = "bytes-undercounted"
byte_inflation_min = -10.0
byte_inflation_max = 0.0
text = "≈{{pct}}% fewer bytes per token than the full validation set: nonstandard byte accounting (bytes under-counted, bpb inflated)"
"""


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_list(values) -> str:
    items = []
    for v in values:
        if isinstance(v, str):
            items.append(toml_string(v))
        elif isinstance(v, bool):
            items.append("true" if v else "false")
        elif isinstance(v, (list, tuple)):
            items.append(toml_list(v))
        else:
            items.append(repr(v))
    return "[" + ", ".join(items) + "]"


def render_toml(summaries: list[dict], logs_read: int, unclassified: list[str]) -> str:
    lines_counted = sum(s["lines"] for s in summaries)
    logs_used = sum(s["logs"] for s in summaries)
    out = [HEADER.format(commit=CORPUS_COMMIT, min_decimals=MIN_DECIMALS)]
    out.append(POLICY.format(commit=CORPUS_COMMIT, logs_read=logs_read, logs_used=logs_used,
                             lines_counted=lines_counted, unclassified=toml_list(unclassified),
                             min_decimals=MIN_DECIMALS))
    for s in summaries:
        identity = TOKENIZER_IDENTITY.get(s["key"], {})
        out.append(f"[tokenizers.{s['key']}]")
        out.append(f"ratio = {s['ratio']!r}")
        out.append(f"bytes_per_token = {s['bytes_per_token']!r}")
        for key in ("vocab_size", "caseops"):
            if key in identity:
                out.append(f"{key} = {toml_list([identity[key]])[1:-1]}")
        for key in ("canonical_val_tokens", "tokenizer_files", "datasets"):
            if key in identity:
                out.append(f"{key} = {toml_list(identity[key])}")
        out.append(f"lines = {s['lines']}")
        out.append(f"logs = {s['logs']}")
        out.append(f"mode_lines = {s['mode_lines']}")
        out.append(f"spread = {s['spread']!r}")
        out.append(f"min = {s['min']!r}")
        out.append(f"max = {s['max']!r}")
        out.append(f"distinct = {toml_list([[v, c] for v, c in s['distinct']])}")
        out.append(f"val_tokens_seen = {toml_list([[n, c] for n, c in s['val_tokens_seen']])}")
        out.append(f"folders = {toml_list(s['folders'])}")
        out.append("")
    return "\n".join(out)


def derive(corpus: Path) -> str:
    stats, unclassified = collect(corpus)
    logs_read = sum(1 for p in corpus.rglob("*")
                    if p.is_file() and p.suffix in LOG_SUFFIXES and p.name != "requirements.txt")
    order = ["sp1024", "sp4096", "sp8192", "sp8192_caseops", "byte260", "bytes256"]
    keys = sorted(stats, key=lambda k: (order.index(k) if k in order else len(order), k))
    summaries = [summarize(k, stats[k]) for k in keys]
    return render_toml(summaries, logs_read, unclassified)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="records corpus root (holds track_* folders)")
    parser.add_argument("--out", type=Path, help="TOML file to write (default: stdout)")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"error: corpus folder not found: {args.corpus}", file=sys.stderr)
        return 2
    text = derive(args.corpus)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

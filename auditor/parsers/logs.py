"""Parse Parameter Golf training logs into runs, metric lines and resource figures.

The line formats come from the format catalogue (``docs/log_formats.md``): every regex below
carries the format id used there, and the few formats added here (marked "added") cover corpus
lines the catalogue leaves out. The parser is a pure function over text: it never executes,
imports or compiles anything found in a log. Source-code dumps are found with text heuristics
only and kept as plain text.

A log file can hold several training runs (a script relaunched into the same file), so the
result is a list of ``RunRecord`` objects, each with its own headline metric. The format table
is in ``log_formats``.

Over 700 lines for a reason: ``_RunBuilder`` is one state machine (about 360 lines) over a
log's lines, and the decoding, source-dump detection and line matching it drives are kept
beside it so one log dialect can be followed from bytes to runs in one module.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .log_formats import (
    NUM,  # re-exported: rules build their own number patterns with it
    LineFormat, MAX_LINE_CHARS, _BY_PREFIX3, _BY_START, _CODE_FIRST_CHARS, _CODE_LIKE, _CODE_START,
    _DIAGNOSTIC_PREFIXES, _ELAPSED, _ENV_LINE, _EPOCH_PREFIX_ML, _EVAL_TIME, _FORMAT_ORDER, _HEADER_END,
    _HEADLINE_FORMATS, _HPARAM_HEADER, _HPARAM_ITEM, _KV_ANY_LINE, _KV_EQ_LINE, _KV_SINGLE_LINE, _KV_TOKEN,
    _MIN_CODE_SHARE, _MIN_STRONG_CODE_LINES, _PARAM_TOKEN, _PROGRESS_PREFIXES, _SEPARATOR, _STEP_AVG,
    _STRONG_CODE, _TEXT_BYTES, _line_start,
)

@dataclass(frozen=True)
class MetricLine:
    """A post-training metric line (final_colon / final_eq / summary block)."""

    label: str
    val_loss: float | None
    val_bpb: float
    bpb_decimals: int
    eval_time_ms: float | None
    eval_time_borrowed_from: int | None
    line: int
    text: str
    diagnostic: bool
    # added fields
    format: str = "final_colon"
    params: tuple[tuple[str, str], ...] = ()  # k:v / k=v tokens around the numbers (stride, T, ...)
    same_pass_as: int | None = None  # line of an earlier metric line that reports the same eval pass


@dataclass(frozen=True)
class ValStep:
    step: int
    total: int
    val_loss: float
    val_bpb: float
    train_time_ms: float | None
    line: int


@dataclass(frozen=True)
class SizeLine:
    bytes: int
    label: str | None
    line: int
    kind: str  # "total" | "budget" | "mb_summary" | "summary_block" | "model"
    exact: bool = True  # False for MB-precision lines (bytes is then the MB figure times 1e6)


@dataclass
class RunRecord:
    """One training run inside a log file."""

    index: int
    first_line: int
    last_line: int
    seed: int | None = None
    seed_line: int | None = None
    seed_source: str | None = None
    header_seed: int | None = None
    filename_seed: int | None = None
    world_size: int | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    val_steps: list[ValStep] = field(default_factory=list)
    metrics: list[MetricLine] = field(default_factory=list)
    headline: MetricLine | None = None
    headline_reason: str = ""
    total_sizes: list[SizeLine] = field(default_factory=list)
    total_bytes: int | None = None
    total_bytes_line: int | None = None
    model_bytes: int | None = None
    model_bytes_line: int | None = None
    code_bytes: int | None = None
    code_bytes_line: int | None = None
    code_bytes_compressed: int | None = None
    code_bytes_compressed_line: int | None = None
    train_time_ms: float | None = None
    train_time_line: int | None = None
    train_time_source: str | None = None
    stop_reason: str | None = None
    steps: int | None = None
    total_steps: int | None = None
    step_avg_ms: float | None = None
    quant_seconds: float | None = None
    quant_lines: list[int] = field(default_factory=list)
    gptq_reserve_seconds: float | None = None
    total_eval_time_s: float | None = None
    total_eval_time_line: int | None = None
    eval_passes_ms: list[tuple[str, float, int]] = field(default_factory=list)
    val_tokens: int | None = None
    tokenizer_path: str | None = None
    dataset: str | None = None
    vocab_size: int | None = None
    train_shards: int | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    hyperparameter_lines: dict[str, int] = field(default_factory=dict)
    source_dump: str | None = None
    source_dump_line: int | None = None
    # added fields
    source_dump_last_line: int | None = None
    model_sizes: list[SizeLine] = field(default_factory=list)  # every "Serialized model" line
    header_seeds: list[tuple[int, int]] = field(default_factory=list)  # (seed, line) of every header seed
    world_size_line: int | None = None
    gptq_reserve_line: int | None = None
    post_gptq_elapsed_s: float | None = None  # "wallclock:post_gptq total_elapsed:Xs"
    post_gptq_elapsed_line: int | None = None
    serialize_wallclock_s: float | None = None
    artifact_production_wallclock_s: float | None = None
    compile_warmup_s: float | None = None  # TTT compile warmup before the eval timer
    has_training_output: bool = False  # periodic validation, progress lines or a stop line
    repeats_run: int | None = None  # index of an earlier run of this file with identical results
    problems: list[str] = field(default_factory=list)

    @property
    def eval_only(self) -> bool:
        """Metric lines without any training output (an eval-only continuation log)."""
        return bool(self.metrics) and not self.has_training_output

    @property
    def eval_time_distinct_ms(self) -> float:
        """Sum of the eval passes, counting a pass printed twice (same_pass_as) once."""
        repeated = {m.line for m in self.metrics if m.same_pass_as is not None}
        return sum(ms for _, ms, line in self.eval_passes_ms if line not in repeated)


@dataclass
class LogFile:
    path: str
    runs: list[RunRecord]
    dialects: list[str]
    problems: list[str]
    n_lines: int
    sha256: str
    # added fields
    n_bytes: int = 0
    epoch_prefixed: bool = False
    source_dumps: list[tuple[int, int]] = field(default_factory=list)  # 1-based inclusive line ranges

    @property
    def last_run(self) -> RunRecord | None:
        return self.runs[-1] if self.runs else None


# ---------------------------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------------------------

_SEED_IN_NAME = (
    re.compile(r"(?:^|[_\-.])seed[_\-]?(?P<n>\d+)(?=$|[_\-.])", re.IGNORECASE),  # train_seed42, seed_42, seed-42
    re.compile(r"(?:^|[_\-])s(?P<n>\d+)(?=$|[_\-.])"),  # ..._s42
    re.compile(r"(?:^|_)log_(?P<n>\d+)$", re.IGNORECASE),  # ternary_log_42
)

_NON_LOG_NAMES = {"cmakelists.txt", "license.txt", "licence.txt", "notice.txt", "constraints.txt",
                  "readme.txt", "requirements-dev.txt", "dev-requirements.txt", "vocab.txt", "merges.txt"}


def seed_from_filename(name: str) -> int | None:
    """The seed a log file name states, or None (e.g. train_seed42.log, ternary_log_42.txt, x_s42.txt)."""
    stem = PurePosixPath(name.replace("\\", "/")).name
    for suffix in (".log", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for pattern in _SEED_IN_NAME:
        m = pattern.search(stem)
        if m and len(m.group("n")) <= 10:
            return int(m.group("n"))
    return None


def is_log_candidate(relpath: str) -> bool:
    """Whether a file of a record folder should be read as a log (*.log, *.txt but not requirements)."""
    parts = PurePosixPath(relpath.replace("\\", "/")).parts
    if not parts or any(p.startswith(".") for p in parts) or "__pycache__" in parts:
        return False
    name = parts[-1].lower()
    if not (name.endswith(".log") or name.endswith(".txt")):
        return False
    if name.startswith("requirements") or name in _NON_LOG_NAMES:
        return False
    return True


def looks_like_training_log(log: LogFile) -> bool:
    """True for logs of training or evaluation runs; False for driver logs and notes."""
    return any(run.has_training_output or run.metrics for run in log.runs)


# ---------------------------------------------------------------------------------------------
# Decoding and line splitting
# ---------------------------------------------------------------------------------------------


def _decode(data: bytes, problems: list[str]) -> str:
    if not data:
        problems.append("empty file")
        return ""
    sample = data[:65536]
    nuls = data.count(b"\x00")
    control = len(sample.translate(None, _TEXT_BYTES))
    if control > len(sample) // 10:
        problems.append(f"looks like binary data ({control} control bytes in the first {len(sample)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        bad_runs = len(re.findall("[\udc80-\udcff]+", text))
        text = re.sub("[\udc80-\udcff]+", "\ufffd", text)
        problems.append(f"invalid UTF-8 replaced at {bad_runs} place{'s' if bad_runs != 1 else ''}")
    if nuls:
        text = text.replace("\x00", "")
        problems.append(f"{nuls} NUL byte{'s' if nuls != 1 else ''} removed")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _split_lines(text: str) -> tuple[list[str], int]:
    """Lines without the trailing newline and without an epoch-timestamp prefix."""
    if not text:
        return [], 0
    text, prefixed = _EPOCH_PREFIX_ML.subn("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        # carriage-return progress output: a terminal shows the last segment of the line
        lines = [line.rsplit("\r", 1)[-1] if "\r" in line else line for line in lines]
    return lines, prefixed


# ---------------------------------------------------------------------------------------------
# Source-code dumps
# ---------------------------------------------------------------------------------------------


def _code_like_flags(lines: list[str], start: int, end: int) -> list[bool | None]:
    """Per line of [start, end): True when shaped like Python, False when not, None when blank.

    Lines inside a triple-quoted string count as code, so docstrings do not break a dump.
    """
    flags: list[bool | None] = []
    in_string = False
    for i in range(start, end):
        line = lines[i]
        if not line or line.isspace():
            flags.append(None)
            continue
        if len(line) > MAX_LINE_CHARS:
            flags.append(False)
            continue
        flags.append(in_string or line[0] in _CODE_FIRST_CHARS or bool(_CODE_LIKE.match(line)))
        if ('"""' in line or "'''" in line) and (line.count('"""') + line.count("'''")) % 2 == 1:
            in_string = not in_string
    return flags


def _find_source_dumps(lines: list[str]) -> list[tuple[int, int]]:
    """0-based [start, end) ranges of embedded training scripts.

    The log is split at separator lines ('=' * 40 or more). In each segment before a separator
    the dump starts at the first line that can open a Python file, or later, right after the last
    block of three or more lines that do not look like Python (run output printed before the
    code, or written into the same file while the code was being dumped). The region up to the segment end is a dump
    when nearly all its lines look like Python and it has a few def/class/import lines. Nothing
    is parsed as Python.
    """
    separators = [i for i, line in enumerate(lines) if line.startswith("====") and _SEPARATOR.match(line)]
    dumps = []
    # Scripts end their dump with a separator, so only segments that end at one are examined.
    for a, b in zip([-1, *separators], separators):
        start = next((i for i in range(a + 1, b)
                      if len(lines[i]) <= MAX_LINE_CHARS and _CODE_START.match(lines[i])), None)
        if start is None or b - start < 5:
            continue
        flags = _code_like_flags(lines, start, b)
        non_code_run = 0
        for k in range(len(flags) - 1, -1, -1):
            if flags[k] is None:
                continue
            if flags[k]:
                non_code_run = 0
                continue
            non_code_run += 1
            if non_code_run == 3:
                # skip forward over this block to the first code-like line after it
                k2 = k
                while k2 < len(flags) and flags[k2] is not True:
                    k2 += 1
                flags = flags[k2:]
                start += k2
                break
        marked = [f for f in flags if f is not None]
        if not marked or sum(marked) < _MIN_CODE_SHARE * len(marked):
            continue
        strong = sum(1 for i in range(start, b) if _STRONG_CODE.match(lines[i]))
        if strong >= _MIN_STRONG_CODE_LINES:
            dumps.append((start, b))
    return dumps


# ---------------------------------------------------------------------------------------------
# Line matching
# ---------------------------------------------------------------------------------------------


def _has_code_marker(line: str) -> bool:
    return "{" in line or "log0(" in line or "print(" in line


def _has_hint_marker(line: str) -> bool:
    return '"' in line or "'" in line or "(" in line or ")" in line


def _match_line(line: str) -> list[tuple[LineFormat, re.Match[str]]]:
    """All groups this line belongs to, with the first matching format of each group."""
    candidates = _BY_PREFIX3.get(line[:3], [])
    if not line.startswith(_PROGRESS_PREFIXES):
        by_needle = [f for f in _BY_START[_line_start(line)] if f.needle in line]
        if by_needle:
            candidates = sorted(candidates + by_needle, key=lambda f: _FORMAT_ORDER[f.id])
    if not candidates or _has_code_marker(line):
        return []
    hint_marked = None
    found: dict[str, tuple[LineFormat, re.Match[str]]] = {}
    for fmt in candidates:
        if fmt.group in found:
            continue
        if fmt.prefix and not line.startswith(fmt.prefix) or fmt.needle not in line:
            continue
        if fmt.guard == "hint":
            if hint_marked is None:
                hint_marked = _has_hint_marker(line)
            if hint_marked:
                continue
        m = fmt.regex.search(line) if fmt.search else fmt.regex.match(line)
        if m:
            found[fmt.group] = (fmt, m)
    return list(found.values())


def match_formats(line: str) -> list[str]:
    """Format ids that one log line (epoch prefix already removed) matches, in table order."""
    if not line or len(line) > MAX_LINE_CHARS:
        return []
    return [fmt.id for fmt, _ in _match_line(line)]


def _decimals(number: str) -> int:
    mantissa = number.lower().split("e", 1)[0]
    return len(mantissa.split(".", 1)[1]) if "." in mantissa else 0


def _same_value(a: float, a_dec: int, b: float, b_dec: int) -> bool:
    """Equal when compared at the coarser of the two printed precisions."""
    decimals = min(a_dec, b_dec)
    return abs(a - b) <= 0.5 * 10.0 ** (-decimals) + 1e-12


_MAX_INDEXED_DECIMALS = 15  # a float has no more significant decimals than this


def _scaled(value: float, decimals: int) -> int | None:
    """``value`` rounded to ``decimals`` places, as an integer (None for NaN and infinities,
    which equal nothing)."""
    if not math.isfinite(value):
        return None
    return math.floor(value * 10.0 ** min(decimals, _MAX_INDEXED_DECIMALS) + 0.5)


class _SameValueIndex:
    """Earlier metric lines by their rounded val_bpb, so that the nearest earlier line with the
    same value (``_same_value``: compared at the coarser printed precision) is found with a few
    dictionary lookups instead of a scan of every earlier line (quadratic on a log that repeats
    its final line thousands of times)."""

    def __init__(self) -> None:
        # (decimals of the earlier line, comparison decimals, scaled value) -> latest index
        self.latest: dict[tuple[int, int, int], int] = {}
        self.latest_timed: dict[tuple[int, int, int], int] = {}  # lines with their own eval time
        self.decimals: set[int] = set()

    def add(self, index: int, metric: MetricLine) -> None:
        decimals = min(metric.bpb_decimals, _MAX_INDEXED_DECIMALS)
        self.decimals.add(decimals)
        timed = metric.eval_time_ms is not None and metric.eval_time_borrowed_from is None
        for places in range(decimals + 1):
            scaled = _scaled(metric.val_bpb, places)
            if scaled is None:
                return
            self.latest[(decimals, places, scaled)] = index
            if timed:
                self.latest_timed[(decimals, places, scaled)] = index

    def nearest(self, finished: list[MetricLine], value: float, decimals: int, *, timed: bool = False) -> MetricLine | None:
        table = self.latest_timed if timed else self.latest
        best = -1
        for earlier_decimals in self.decimals:
            places = min(earlier_decimals, decimals, _MAX_INDEXED_DECIMALS)
            center = _scaled(value, places)
            if center is None:
                return None
            for scaled in (center - 1, center, center + 1):  # neighbours: values on a rounding boundary
                index = table.get((earlier_decimals, places, scaled), -1)
                if index > best and _same_value(finished[index].val_bpb, finished[index].bpb_decimals, value, decimals):
                    best = index
        return finished[best] if best >= 0 else None


def _is_diagnostic(label: str) -> bool:
    lowered = label.lower()
    return any(lowered.startswith(p.lower()) for p in _DIAGNOSTIC_PREFIXES)


def _eval_time_ms(*parts: str) -> float | None:
    for part in parts:
        if not part:
            continue
        m = _EVAL_TIME.search(part)
        if m:
            value = float(m.group("v"))
            return value if m.group("u") == "ms" else value * 1000.0
        m = _ELAPSED.search(part)
        if m:
            return float(m.group("v")) * 1000.0
    return None


# ---------------------------------------------------------------------------------------------
# Run assembly
# ---------------------------------------------------------------------------------------------


class _RunBuilder:
    """Collects the events of one run; finish() turns them into a RunRecord."""

    def __init__(self, index: int, first_line: int):
        self.run = RunRecord(index=index, first_line=first_line, last_line=first_line)
        self.has_output = False
        self.header_done = False
        self.launches: list[tuple[str, int]] = []  # (kind, line) of launch markers inside this run
        self.gpu_indices: set[int] = set()
        self.launch_gpu_count: int | None = None
        self.last_progress: tuple[re.Match[str], int] | None = None  # (match, line)
        self.last_progress_ms: tuple[re.Match[str], int] | None = None
        self.last_progress_min: tuple[re.Match[str], int] | None = None
        self.stop_line: int | None = None
        self.quant_totals: list[tuple[float, int]] = []
        self.quant_parts: list[tuple[float, int]] = []
        self.aux_passes: list[tuple[str, float, int]] = []
        self.last_avg_text: str | None = None  # last progress line with a step average

    # -- helpers
    def mark_output(self) -> None:
        self.has_output = True
        self.header_done = True

    def add_hparam(self, key: str, value: str, line: int) -> None:
        if key not in self.run.hyperparameters:
            self.run.hyperparameters[key] = value
            self.run.hyperparameter_lines[key] = line

    # -- event handlers, one per group
    def on_val_step(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        tt = m.groupdict().get("tt")
        step = ValStep(int(m["step"]), int(m["total"]), float(m["loss"]), float(m["bpb"]),
                       float(tt) if tt is not None else None, line)
        self.run.val_steps.append(step)
        if "avg:" in m.string:
            self.last_avg_text = m.string
        self.mark_output()

    def on_final(self, fmt: LineFormat, m: re.Match[str], line: int, text: str) -> None:
        label = m["label"]
        if m.groupdict().get("pre"):
            label = f"{label} {m['pre']}"
        params_text = m.groupdict().get("params") or ""
        rest = m.groupdict().get("rest") or ""
        params = tuple(_PARAM_TOKEN.findall(params_text + " " + rest))
        self.run.metrics.append(MetricLine(
            label=label, val_loss=float(m["loss"]), val_bpb=float(m["bpb"]), bpb_decimals=_decimals(m["bpb"]),
            eval_time_ms=_eval_time_ms(rest, params_text), eval_time_borrowed_from=None, line=line, text=text,
            diagnostic=_is_diagnostic(label), format=fmt.id, params=params))
        self.mark_output()

    def on_summary(self, fmt: LineFormat, m: re.Match[str], line: int, text: str) -> None:
        self.run.metrics.append(MetricLine(
            label="summary_block", val_loss=None, val_bpb=float(m["bpb"]), bpb_decimals=_decimals(m["bpb"]),
            eval_time_ms=None, eval_time_borrowed_from=None, line=line, text=text, diagnostic=False,
            format=fmt.id))
        self.mark_output()

    def on_size(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        groups = m.groupdict()
        if fmt.id == "total_size":
            size = SizeLine(int(m["bytes"]), groups.get("fmt"), line, "total")
        elif fmt.id == "budget_line":
            size = SizeLine(int(m["bytes"]), f"budget {m['verdict']}", line, "budget")
        elif fmt.id == "mb_summary":
            size = SizeLine(round(float(m["mb"]) * 1_000_000), f"{m['fmt']} (MB precision)", line,
                            "mb_summary", exact=False)
        elif fmt.id == "summary_block_bytes":
            size = SizeLine(int(m["bytes"]), "summary block", line, "summary_block")
        elif fmt.id == "pipe_raw_total":
            size = SizeLine(int(m["bytes"]), "raw", line, "total")
            self.run.model_sizes.append(SizeLine(int(m["model"]), "raw", line, "model"))
            self.set_code(int(m["code"]), line)
        else:  # pipe_total
            size = SizeLine(int(m["bytes"]), m["fmt"], line, "total")
            self.run.model_sizes.append(SizeLine(int(m["model"]), m["fmt"], line, "model"))
        self.run.total_sizes.append(size)
        self.mark_output()

    def on_model_size(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        self.run.model_sizes.append(SizeLine(int(m["bytes"]), m.groupdict().get("fmt"), line, "model"))
        self.mark_output()

    def set_code(self, n: int, line: int) -> None:
        self.run.code_bytes = n
        self.run.code_bytes_line = line

    def on_code(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        if fmt.id == "code_size_paren" and m["which"] == "compressed":
            self.run.code_bytes_compressed = int(m["bytes"])
            self.run.code_bytes_compressed_line = line
        else:
            self.set_code(int(m["bytes"]), line)
        self.mark_output()

    def on_stop(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        self.run.stop_reason = m["reason"]
        self.run.train_time_ms = float(m["tt"])
        self.run.train_time_line = line
        self.run.train_time_source = "stopping_early"
        if m["step"] is not None:
            self.run.steps = int(m["step"])
            self.run.total_steps = int(m["total"])
        self.stop_line = line
        self.mark_output()

    def on_eval_aux(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        groups = m.groupdict()
        ms = float(groups["ms"]) if groups.get("ms") is not None else float(groups["s"]) * 1000.0
        label = {"temp_scaling": "temp_scaling", "ngram_precompute": "ngram_tilt:precompute",
                 "ttt_completed": "ttt:completed"}[fmt.id]
        self.aux_passes.append((label, ms, line))
        self.mark_output()

    def on_warmup(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        self.run.compile_warmup_s = float(m["s"])

    def on_eval_total(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        self.run.total_eval_time_s = float(m["s"])
        self.run.total_eval_time_line = line
        self.mark_output()

    def on_wallclock(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        if fmt.id == "post_gptq_elapsed":
            self.run.post_gptq_elapsed_s = float(m["s"])
            self.run.post_gptq_elapsed_line = line
        elif fmt.id == "gptq_reserve":
            self.run.gptq_reserve_seconds = float(m["s"])
            self.run.gptq_reserve_line = line
        elif fmt.id == "gptq_reserve_ms":
            self.run.gptq_reserve_seconds = int(m["resms"]) / 1000.0
            self.run.gptq_reserve_line = line
        elif m["name"] == "serialize_wallclock":
            self.run.serialize_wallclock_s = float(m["s"])
        else:
            self.run.artifact_production_wallclock_s = float(m["s"])

    def on_quant_time(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        groups = m.groupdict()
        for name in ("b", "e"):  # "gptq:done in Xs", "quantization complete in Xs total": phase totals
            if groups.get(name) is not None:
                self.quant_totals.append((float(groups[name]), line))
                return
        value = next(float(v) for k, v in groups.items() if v is not None)
        self.quant_parts.append((value, line))

    def on_train_progress(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        # Only the last progress line matters; keep the match and read it in finish().
        self.last_progress = (m, line)
        if fmt.id == "train_step_time_ms":
            self.last_progress_ms = (m, line)
        else:
            self.last_progress_min = (m, line)
        if "avg:" in m.string:
            self.last_avg_text = m.string
        self.has_output = True
        self.header_done = True

    def on_seed(self, seed: int, line: int) -> None:
        self.run.header_seeds.append((seed, line))
        if self.run.header_seed is None:
            self.run.header_seed = seed
            self.run.seed_line = line

    def on_world(self, n: int, line: int) -> None:
        if self.run.world_size is None:
            self.run.world_size = n
            self.run.world_size_line = line

    def on_gpu(self, fmt: LineFormat, m: re.Match[str]) -> None:
        if fmt.id == "gpu_nvsmi":
            self.gpu_indices.add(int(m["idx"]))
            if self.run.gpu is None:
                self.run.gpu = m["gpu"].strip()
        else:
            count, _, name = m["gpu"].partition("x")
            if self.run.gpu is None:
                self.run.gpu = name
            self.launch_gpu_count = int(count)

    def on_params(self, fmt: LineFormat, m: re.Match[str], line: int) -> None:
        if m["seed"] is not None:
            self.on_seed(int(m["seed"]), line)
        self.on_world(int(m["ws"]), line)

    def on_hint(self, fmt: LineFormat, m: re.Match[str]) -> None:
        # First value wins: these are printed once per launch, before training.
        run = self.run
        if fmt.group == "val_tokens" and run.val_tokens is None:
            run.val_tokens = int(m["n"])
        elif fmt.group == "tokenizer" and run.tokenizer_path is None:
            run.tokenizer_path = m["p"]
        elif fmt.group == "dataset" and run.dataset is None:
            run.dataset = m["d"]
        elif fmt.group == "vocab" and run.vocab_size is None:
            run.vocab_size = int(m["n"] or m["n2"])
        elif fmt.group == "train_shards" and run.train_shards is None:
            run.train_shards = int(m["n"])

    def apply(self, fmt: LineFormat, m: re.Match[str], line: int, text: str) -> None:
        """Feed one matched line to the handler of its group."""
        group = fmt.group
        if group == "final":
            self.on_final(fmt, m, line, text)
        elif group == "summary":
            self.on_summary(fmt, m, line, text)
        elif group == "seed":
            self.on_seed(int(m["seed"]), line)
        elif group == "world":
            self.on_world(int(m["n"]), line)
        elif group == "gpu":
            self.on_gpu(fmt, m)
        elif group in ("val_tokens", "tokenizer", "dataset", "vocab", "train_shards"):
            self.on_hint(fmt, m)
        else:
            getattr(self, "on_" + group)(fmt, m, line)

    def has_run_content(self) -> bool:
        run = self.run
        return bool(self.has_output or self.launches or run.header_seeds or run.world_size is not None
                    or run.hyperparameters or run.val_tokens is not None or run.gpu is not None)

    # -- finishing
    def finish(self, last_line: int, filename_seed: int | None) -> RunRecord:
        run = self.run
        run.last_line = last_line
        run.has_training_output = bool(run.val_steps) or self.last_progress is not None or self.stop_line is not None
        run.filename_seed = filename_seed
        if run.header_seed is not None:
            run.seed, run.seed_source = run.header_seed, "header"
        elif filename_seed is not None:
            run.seed, run.seed_source = filename_seed, "filename"
        if self.gpu_indices:
            run.gpu_count = len(self.gpu_indices)
        elif self.launch_gpu_count is not None:
            run.gpu_count = self.launch_gpu_count
        self._finish_train_time()
        self._finish_metrics()
        self._finish_sizes()
        self._finish_quant()
        eval_passes = [(m.label, m.eval_time_ms, m.line) for m in run.metrics
                       if m.eval_time_ms is not None and m.eval_time_borrowed_from is None]
        run.eval_passes_ms = sorted(eval_passes + self.aux_passes, key=lambda p: p[2])
        self._finish_problems()
        return run

    def _finish_train_time(self) -> None:
        # Train time: the stop line; else the last progress line in ms; else the last one in minutes.
        run = self.run
        latest = None
        if self.last_progress is not None:
            m, line = self.last_progress
            latest = (int(m["step"]), int(m["total"]), line)
        if run.val_steps and (latest is None or run.val_steps[-1].line > latest[2]):
            latest = (run.val_steps[-1].step, run.val_steps[-1].total, run.val_steps[-1].line)
        if run.steps is None and latest is not None:
            run.steps, run.total_steps = latest[0], latest[1]
        if self.last_avg_text is not None:
            avg = _STEP_AVG.search(self.last_avg_text)
            if avg:
                run.step_avg_ms = float(avg["v"])
        if run.train_time_ms is None:
            if self.last_progress_ms is not None:
                m, run.train_time_line = self.last_progress_ms
                run.train_time_ms = float(m["tt"])
                run.train_time_source = "last_step"
            elif self.last_progress_min is not None:
                m, run.train_time_line = self.last_progress_min
                run.train_time_ms = float(m["tm"]) * 60000.0
                run.train_time_source = "minutes"

    def _finish_metrics(self) -> None:
        run = self.run
        finished: list[MetricLine] = []
        earlier = _SameValueIndex()
        for metric in run.metrics:
            nearest = earlier.nearest(finished, metric.val_bpb, metric.bpb_decimals)
            same_pass = None
            borrowed_from = None
            eval_ms = metric.eval_time_ms
            if nearest is not None:
                if metric.eval_time_ms is None:
                    same_pass = nearest.line
                else:
                    earlier_ms = nearest.eval_time_ms if nearest.eval_time_borrowed_from is None else None
                    if earlier_ms is not None and abs(earlier_ms - metric.eval_time_ms) <= max(1000.0, 0.02 * earlier_ms):
                        same_pass = nearest.line
            if eval_ms is None:
                timed = earlier.nearest(finished, metric.val_bpb, metric.bpb_decimals, timed=True)
                if timed is not None:
                    eval_ms, borrowed_from = timed.eval_time_ms, timed.line
            finished.append(MetricLine(
                label=metric.label, val_loss=metric.val_loss, val_bpb=metric.val_bpb,
                bpb_decimals=metric.bpb_decimals, eval_time_ms=eval_ms, eval_time_borrowed_from=borrowed_from,
                line=metric.line, text=metric.text, diagnostic=metric.diagnostic, format=metric.format,
                params=metric.params, same_pass_as=same_pass))
            earlier.add(len(finished) - 1, finished[-1])
        run.metrics = finished
        eligible = [m for m in finished if m.format in _HEADLINE_FORMATS and not m.diagnostic]
        if eligible:
            run.headline = eligible[-1]
            later = [m for m in finished if m.line > run.headline.line and m.format in _HEADLINE_FORMATS]
            reason = "last non-diagnostic metric line"
            if later:
                reason += f" (later diagnostic line{'s' if len(later) > 1 else ''} skipped)"
            if run.headline.eval_time_borrowed_from is not None:
                reason += f"; eval time taken from line {run.headline.eval_time_borrowed_from} (same val_bpb)"
            run.headline_reason = reason
        elif finished:
            run.headline_reason = "only diagnostic or summary metric lines"
        elif run.val_steps:
            last = run.val_steps[-1]
            run.headline_reason = (f"no post-training metric line (last periodic validation: step {last.step} "
                                   f"val_bpb {last.val_bpb} at line {last.line})")
        else:
            run.headline_reason = "no metric line"

    def _finish_sizes(self) -> None:
        run = self.run
        totals = [s for s in run.total_sizes if s.kind in ("total", "budget")]
        if totals:
            run.total_bytes, run.total_bytes_line = totals[-1].bytes, totals[-1].line
        if run.model_sizes:
            run.model_bytes, run.model_bytes_line = run.model_sizes[-1].bytes, run.model_sizes[-1].line

    def _finish_quant(self) -> None:
        # The calibration timers of these scripts run from the start of the quantization phase,
        # so later timers include earlier ones (Mamba3Hybrid: generated 199.1 s, collected 199.6 s,
        # complete 223.4 s total). The phase time is the "total"/"done" figure when printed, else
        # the longest timer; summing them would count the same seconds twice.
        run = self.run
        lines = [line for _, line in self.quant_totals + self.quant_parts]
        run.quant_lines = sorted(lines)
        if self.quant_totals:
            run.quant_seconds = max(v for v, _ in self.quant_totals)
        elif self.quant_parts:
            run.quant_seconds = max(v for v, _ in self.quant_parts)

    def _finish_problems(self) -> None:
        run = self.run
        distinct = sorted({s for s, _ in run.header_seeds})
        if len(distinct) > 1 and (run.has_training_output or run.metrics):
            run.problems.append(f"header seeds disagree: {', '.join(map(str, distinct))}")
        if (run.header_seed is not None and run.filename_seed is not None
                and run.header_seed != run.filename_seed):
            run.problems.append(f"seed in the header ({run.header_seed}, line {run.seed_line}) differs from "
                                f"the seed in the file name ({run.filename_seed})")
        if run.has_training_output and not run.metrics:
            run.problems.append("no post-training metric line")
        for kind in ("source dump", "hyperparameters block"):
            lines = [line for k, line in self.launches if k == kind]
            if len(lines) > 1:
                run.problems.append(f"{len(lines)} {kind}s before any training output (lines "
                                    + ", ".join(map(str, lines)) + "): the earlier launches were aborted")


def _run_signature(run: RunRecord) -> tuple:
    return (tuple((m.label, m.val_bpb) for m in run.metrics), run.train_time_ms,
            tuple((v.step, v.val_bpb) for v in run.val_steps), run.total_bytes)


def parse_log(data: bytes | str, path: str) -> LogFile:
    """Parse one log file. Never raises: unreadable input is reported in ``problems``."""
    if isinstance(data, str):
        raw = data.encode("utf-8", errors="surrogatepass")
    else:
        raw = bytes(data)
    log = LogFile(path=path, runs=[], dialects=[], problems=[], n_lines=0,
                  sha256=hashlib.sha256(raw).hexdigest(), n_bytes=len(raw))
    try:
        _parse_into(log, raw)
    except Exception as exc:  # fail closed: the caller sees an unparsed log, not a crash
        log.problems.append(f"internal parse error: {type(exc).__name__}: {exc}")
    return log


def _parse_into(log: LogFile, raw: bytes) -> None:
    text = _decode(raw, log.problems)
    lines, prefixed = _split_lines(text)
    log.n_lines = len(lines)
    log.epoch_prefixed = prefixed > 0
    filename_seed = seed_from_filename(log.path)

    dumps = _find_source_dumps(lines)
    log.source_dumps = [(a + 1, b) for a, b in dumps]
    dump_at = {a: b for a, b in dumps}

    dialects: set[str] = set()
    too_long = 0
    runs: list[RunRecord] = []
    builder = _RunBuilder(0, 1)
    in_hparam_block = False

    def start_launch(line_no: int, kind: str) -> None:
        # A launch marker after training or evaluation output begins the next run.
        nonlocal builder
        if builder.has_output:
            runs.append(builder.finish(line_no - 1, filename_seed))
            builder = _RunBuilder(len(runs), line_no)
        builder.launches.append((kind, line_no))

    i = 0
    n = len(lines)
    while i < n:
        line_no = i + 1
        if i in dump_at:
            end = dump_at[i]
            start_launch(line_no, "source dump")
            # The lines between the dump start and the separator, joined with newlines. Whether
            # the script's final newline is included depends on how it was written (log0 adds
            # one, a raw write does not), so compare dumps without trailing newlines.
            builder.run.source_dump = "\n".join(lines[i:end])
            builder.run.source_dump_line = line_no
            builder.run.source_dump_last_line = end
            in_hparam_block = False
            i = end
            continue
        line = lines[i]
        i += 1
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            too_long += 1
            in_hparam_block = False
            continue

        if in_hparam_block:
            item = _HPARAM_ITEM.match(line)
            if item:
                builder.add_hparam(item["k"], item["v"], line_no)
            else:
                in_hparam_block = False
        if line[0] in "H-" and _HPARAM_HEADER.match(line):
            start_launch(line_no, "hyperparameters block")
            in_hparam_block = line.startswith("Hyperparameters")
            continue

        matches = _match_line(line)
        for fmt, m in matches:
            dialects.add(fmt.id)
            group = fmt.group
            if group == "val_step" and int(m["step"]) == 0:
                start_launch(line_no, "step 0")
            elif fmt.id in ("seed_colon", "world_size_colon", "params_summary"):
                start_launch(line_no, fmt.id)

        for fmt, m in matches:
            builder.apply(fmt, m, line_no, line)

        # k=v dumps (ternary / JEPA / env lines) anywhere; env echoes and k:v lines before training.
        if not builder.header_done and _HEADER_END.match(line):
            builder.header_done = True
        if matches and matches[0][0].group in ("val_step", "train_progress"):
            continue
        if "=" in line and _KV_EQ_LINE.match(line):
            for key, value in _KV_TOKEN.findall(line):
                builder.add_hparam(key, value, line_no)
        elif not builder.header_done and "=" in line and (env := _ENV_LINE.match(line)):
            builder.add_hparam(env["k"], env["v"], line_no)
        elif not builder.header_done and ":" in line and not line[0].isspace():
            if _KV_ANY_LINE.match(line):
                for key, value in _KV_TOKEN.findall(line):
                    builder.add_hparam(key, value, line_no)
            elif _KV_SINGLE_LINE.match(line):
                key, _, value = line.partition(": ")
                builder.add_hparam(key, value.strip(), line_no)

    if builder.has_output:
        runs.append(builder.finish(max(n, 1), filename_seed))
    elif runs:
        # launch markers after the last run with nothing following them
        first = builder.run.first_line
        log.problems.append(f"an aborted launch at lines {first}-{n} has no training output")
    elif builder.has_run_content():
        runs.append(builder.finish(max(n, 1), filename_seed))
    log.runs = runs

    signatures: dict[tuple, int] = {}
    for run in runs:
        sig = _run_signature(run)
        if run.metrics or run.val_steps:
            if sig in signatures:
                run.repeats_run = signatures[sig]
            else:
                signatures[sig] = run.index

    log.dialects = sorted(dialects, key=lambda d: _FORMAT_ORDER[d])
    if too_long:
        log.problems.append(f"{too_long} line{'s' if too_long != 1 else ''} longer than {MAX_LINE_CHARS} "
                            "characters not parsed")
    real_runs = [r for r in runs if r.has_training_output or r.metrics]
    if len(real_runs) > 1:
        spans = ", ".join(f"{r.first_line}-{r.last_line}" for r in real_runs)
        log.problems.append(f"holds {len(real_runs)} runs (lines {spans})")
    for run in runs:
        if run.repeats_run is not None:
            log.problems.append(f"run {run.index + 1} (lines {run.first_line}-{run.last_line}) repeats run "
                                f"{run.repeats_run + 1} (identical results)")
        prefix = f"run {run.index + 1}: " if len(runs) > 1 else ""
        log.problems.extend(prefix + p for p in run.problems)
    if lines and not real_runs:
        log.problems.append("no training or evaluation output")
    elif real_runs and not any(r.metrics for r in real_runs) and not any("no post-training" in p for p in log.problems):
        log.problems.append("no post-training metric line")

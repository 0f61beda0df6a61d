"""The log line formats of the Parameter Golf training logs: one regex per format of the
format catalogue (``docs/log_formats.md``; each carries its format id, and the few added here
are marked "added"), their lookup by line prefix, the lines that start a new run, and the
heuristics that recognise a source-code dump. Data only: the parser is ``logs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"

# Real metric, size and header lines are a few hundred characters; the longest real log line is
# about 5 kB. Longer lines are not matched at all, which keeps the work per line bounded.
MAX_LINE_CHARS = 20_000

# A line-leading epoch timestamp ("1776144156.999 "); one space only, so that the indentation
# of "  seed: N" in a Hyperparameters block survives.
_EPOCH_PREFIX_ML = re.compile(r"^\d{10}\.\d{1,6} ", re.MULTILINE)

# Labels of metric lines that never count as the headline (headline rule, log_formats.md §1.4).
_DIAGNOSTIC_PREFIXES = ("diagnostic", "pre-quantization", "pre_quant", "post_ema", "ttt_sliding:start")

_HEADLINE_FORMATS = ("final_colon", "final_eq")

# Bytes that are not control characters (printable ASCII, tab, newline, form feed, CR, and all
# bytes >= 0x80, which UTF-8 text uses); removing them from a sample leaves the control bytes.
_TEXT_BYTES = bytes([9, 10, 12, 13, *range(32, 256)])

# Guards against source-code lines (log_formats.md §1.2).
_CODE_MARKERS = ("{", "log0(", "print(")
_HINT_MARKERS = ('"', "'", "(", ")")


@dataclass(frozen=True)
class LineFormat:
    """One line dialect: which group it feeds, how to find it cheaply, how to parse it."""

    id: str
    group: str
    regex: re.Pattern[str]
    prefix: str = ""  # literal the line starts with ("" when the start varies)
    needle: str = ""  # literal the line must contain before the regex is tried
    search: bool = False  # re.search (hints inside longer lines) instead of re.match
    guard: str = "code"  # "code": skip lines with code markers; "hint": also quotes/parentheses
    starts: str = "word"  # what the line can start with: word, digit, space, other, any (needle formats)


def _fmt(id: str, group: str, pattern: str, *, prefix: str = "", needle: str = "",
         search: bool = False, guard: str = "code", starts: str = "word") -> LineFormat:
    return LineFormat(id, group, re.compile(pattern.replace("NUM", NUM)), prefix, needle, search, guard, starts)


# Table order matters inside a group: the first format of a group that matches a line wins.
FORMATS: tuple[LineFormat, ...] = (
    # --- periodic validation during training (group val_step)
    _fmt("val_step_colon", "val_step",
         r"^step:(?P<step>\d+)/(?P<total>\d+) val_loss:(?P<loss>NUM) val_bpb:(?P<bpb>NUM)"
         r"(?: train_time:(?P<tt>NUM)ms)?(?P<rest>.*)$", prefix="step:", needle="val_bpb:"),
    _fmt("val_step_bare", "val_step",
         r"^(?P<step>\d+)/(?P<total>\d+) val_loss: (?P<loss>NUM) val_bpb: (?P<bpb>NUM)\s*$",
         needle="val_bpb: ", starts="digit"),
    # --- post-training metric lines (group final)
    _fmt("final_eq", "final",
         r"^(?P<label>[A-Za-z][\w\-]*:[\w\-]+) val_loss=(?P<loss>NUM) val_bpb=(?P<bpb>NUM)(?P<rest>.*)$",
         needle=" val_bpb="),
    _fmt("final_colon", "final",
         r"^(?P<label>[A-Za-z][\w\-\.]*(?: [A-Za-z][\w\-\.]*){0,5}?)(?P<params>(?: [A-Za-z_]+:NUM)*) "
         r"(?:(?P<pre>sliding) )?val_loss:\s*(?P<loss>NUM)\s+(?:sliding )?val_bpb:\s*(?P<bpb>NUM)(?P<rest>.*)$",
         needle="val_bpb:"),
    # --- end-of-log '---' summary block (groups summary / size)
    _fmt("summary_block_bpb", "summary", r"^val_bpb:\s+(?P<bpb>NUM)\s*$", prefix="val_bpb:"),
    _fmt("summary_block_bytes", "size", r"^artifact_bytes:\s+(?P<bytes>\d+)\s*$", prefix="artifact_bytes:"),
    # --- total artifact size (group size)
    _fmt("total_size", "size",
         r"^Total submission size(?: (?P<fmt>[^:]+?))?: (?P<bytes>\d+) bytes\s*$",
         prefix="Total submission size"),
    _fmt("budget_line", "size",
         r"^budget:(?P<bytes>\d+)/(?P<cap>\d+) \((?P<mb>[\d.]+)/(?P<capmb>[\d.]+)MB\) (?P<verdict>\w+)\s*$",
         prefix="budget:"),
    _fmt("mb_summary", "size",
         r"^\s*(?P<fmt>[\w+\-]+): (?P<model>[\d.]+)MB model \+ (?P<code>[\d.]+)MB code = "
         r"(?P<mb>[\d.]+)/(?P<capmb>[\d.]+)MB (?P<verdict>\w+)\s*$", needle="MB model + ",
         starts="word space"),
    # added: LegendreGPT prints "Raw model: N bytes | Code: N bytes | Total: N" and then
    # "INT7+zlib model: N bytes | Total submission: N bytes".
    _fmt("pipe_raw_total", "size",
         r"^Raw model: (?P<model>\d+) bytes \| Code: (?P<code>\d+) bytes \| Total: (?P<bytes>\d+)\s*$",
         prefix="Raw model: "),
    _fmt("pipe_total", "size",
         r"^(?P<fmt>[\w+\-]+) model: (?P<model>\d+) bytes \| Total submission: (?P<bytes>\d+) bytes\s*$",
         needle=" | Total submission: "),
    # --- serialized (compressed) model size (group model_size)
    _fmt("serialized_size", "model_size",
         r"^Serialized model(?: (?P<fmt>[^:]+?))?: (?P<bytes>\d+) bytes(?P<rest>.*)$", prefix="Serialized model"),
    # --- code size (group code)
    _fmt("code_size", "code", r"^Code size: (?P<bytes>\d+) bytes\s*$", prefix="Code size: "),
    _fmt("code_size_paren", "code",
         r"^Code size \((?P<which>uncompressed|compressed)\): (?P<bytes>\d+) bytes\s*$", prefix="Code size ("),
    _fmt("artifact_line", "code", r"^artifact:(?P<mb>[\d.]+)MB .*\bcode:(?P<bytes>\d+)\s*$", prefix="artifact:"),
    # --- training stop (group stop)
    _fmt("stop_colon", "stop",
         r"^stopping_early: (?P<reason>\w+) train_time:(?P<tt>\d+)ms(?: step:(?P<step>\d+)/(?P<total>\d+))?\s*$",
         prefix="stopping_early: "),
    _fmt("stop_space", "stop",
         r"^stopping_early: (?P<reason>\w+) train_time: (?P<tt>\d+)ms step: (?P<step>\d+)/(?P<total>\d+)\s*$",
         prefix="stopping_early: "),
    # --- auxiliary eval passes with a time (group eval_aux)
    _fmt("temp_scaling", "eval_aux",
         r"^temp_scaling optimal_T:(?P<T>NUM) (?:eval_)?time:(?P<ms>NUM)ms\s*$", prefix="temp_scaling "),
    # added: eval-time n-gram precompute (counted inside the eval budget) and the TTT pass time
    # printed by scripts whose final line says eval_time:0ms.
    _fmt("ngram_precompute", "eval_aux", r"^ngram_tilt:precompute .*?\belapsed=(?P<s>NUM)s\b",
         prefix="ngram_tilt:precompute"),
    _fmt("ttt_completed", "eval_aux", r"^ttt:completed steps:\d+ time:(?P<s>NUM)s\s*$", prefix="ttt:completed"),
    # added: compile warmup before the TTT eval timer (excluded from eval time in practice).
    _fmt("compile_warmup", "warmup", r"^[\w]+:compile warmup done \((?P<s>NUM)s\)\s*$", needle="compile warmup done"),
    # --- total eval time (group eval_total)
    _fmt("total_eval_time", "eval_total", r"^total_eval_time:(?P<s>NUM)s\s*$", prefix="total_eval_time:"),
    # --- wallclock / GPTQ budget (group wallclock)
    _fmt("post_gptq_elapsed", "wallclock",
         r"^wallclock:post_gptq total_elapsed:(?P<s>NUM)s train_budget:(?P<budget>NUM)s", prefix="wallclock:post_gptq"),
    _fmt("gptq_reserve", "wallclock", r"^gptq:reserving (?P<s>[\d.]+)s, effective=(?P<ms>\d+)ms",
         prefix="gptq:reserving"),
    # added: "gptq:reserving 0ms from training budget, effective=600000ms"
    _fmt("gptq_reserve_ms", "wallclock",
         r"^gptq:reserving (?P<resms>\d+)ms from training budget, effective=(?P<ms>\d+)ms", prefix="gptq:reserving"),
    # added: serialization and artifact-production wallclock lines of compliance reruns.
    _fmt("wallclock_summary", "wallclock",
         r"^(?P<name>serialize_wallclock|artifact_production_wallclock): (?P<s>NUM)s\b", needle="_wallclock: "),
    # --- post-training quantization timing (group quant_time)
    _fmt("gptq_timing", "quant_time",
         r"^(?:gptq:generated \d+ (?:sequences|seqs) in (?P<a>NUM)s|gptq:done in (?P<b>NUM)s"
         r"|GPTQ:collected \d+ Hessians in (?P<c>NUM)s|gptq:calibrated \d+ layers in (?P<d>NUM)s"
         r"|gptq:quantization complete in (?P<e>NUM)s total|gptq:collected hessians for \d+ layers in (?P<f>NUM)s)",
         needle=" in "),
    # --- training progress (group train_progress)
    _fmt("train_step_time_ms", "train_progress",
         r"^step:(?P<step>\d+)/(?P<total>\d+) .*?\b(?:train_time|t):(?P<tt>\d+)ms", prefix="step:"),
    _fmt("train_step_time_min", "train_progress",
         r"^(?P<step>\d+)/(?P<total>\d+) train_loss: NUM train_time: (?P<tm>NUM)m", needle=" train_time: ",
         starts="digit"),
    # --- seed (group seed)
    _fmt("seed_colon", "seed", r"^seed:(?P<seed>\d+)\s*$", prefix="seed:", guard="hint"),
    _fmt("seed_hparam", "seed", r"^\s+seed: (?P<seed>\d+)\s*$", needle="seed: ", guard="hint", starts="space"),
    _fmt("seed_kv_inline", "seed", r"(?:^|\s)seed=(?P<seed>\d+)(?:\s|$)", needle="seed=", search=True, guard="hint",
         starts="any"),
    # added: ternary / binary / XNOR / JEPA one-line model summary "params:N ... ws:8 ga:1 s:42"
    _fmt("params_summary", "params",
         r"^(?:[\w\- ]+ \| )?params:[\d,]+\b.*?\bws:(?P<ws>\d+) ga:(?P<ga>\d+)(?: s:(?P<seed>\d+))?\s*$",
         needle="params:"),
    # --- world size (group world)
    _fmt("world_size_colon", "world", r"^world_size:(?P<n>\d+)\b", prefix="world_size:", guard="hint"),
    _fmt("world_size_hparam", "world", r"^\s+world_size: (?P<n>\d+)\s*$", needle="world_size: ", guard="hint",
         starts="space"),
    # --- GPU type (group gpu)
    _fmt("gpu_nvsmi", "gpu", r"\|\s+(?P<idx>\d+)\s+(?P<gpu>NVIDIA [^|]*?)\s{2,}(?:On|Off)\s+\|",
         needle="NVIDIA", search=True, guard="hint", starts="other"),
    _fmt("gpu_launch_hint", "gpu", r"Launching torchrun on (?P<gpu>\d+x\w+)", needle="Launching torchrun",
         search=True, guard="hint", starts="any"),
    # --- validation token count (group val_tokens)
    _fmt("val_tokens_hparam", "val_tokens", r"^val_tokens: ?(?P<n>\d+)\s*$", prefix="val_tokens:", guard="hint"),
    _fmt("val_loader_tokens", "val_tokens", r"^val_loader:shards pattern=(?P<pat>\S+) tokens:(?P<n>\d+)\s*$",
         prefix="val_loader:", guard="hint"),
    _fmt("val_tokens_space", "val_tokens", r"^val tokens: (?P<n>\d+)\s*$", prefix="val tokens: ", guard="hint"),
    # --- tokenizer, dataset, vocab, train shards (hints)
    _fmt("tokenizer_path", "tokenizer", r"tokenizer_path[=:]\s?(?P<p>\S+\.model)\b", needle="tokenizer_path",
         search=True, guard="hint", starts="any"),
    _fmt("dataset_name", "dataset",
         r"\b(?:train_loader:dataset:|datasets/|data_path=\S*?/)(?P<d>fineweb10B_[\w]+)", needle="fineweb10B_",
         search=True, guard="hint", starts="any"),
    _fmt("vocab_hparam", "vocab", r"^\s+vocab_size: (?P<n>\d+)\s*$|(?:^|\s)vocab_size=(?P<n2>\d+)(?:\s|$)",
         needle="vocab_size", search=True, guard="hint", starts="word space"),
    # added: "train_loader:dataset:fineweb10B_sp1024 train_shards:25" and "train_shards: 143"
    _fmt("train_shards", "train_shards", r"(?:^|\s)train_shards: ?(?P<n>\d+)\s*$", needle="train_shards:",
         search=True, guard="hint"),
)

FORMAT_IDS: tuple[str, ...] = tuple(f.id for f in FORMATS)
_FORMAT_ORDER = {f.id: i for i, f in enumerate(FORMATS)}

# Formats with a literal prefix are looked up by the first three characters of the line; the
# others are tried when their needle is in the line and the line starts the way they can.
_BY_PREFIX3: dict[str, list[LineFormat]] = {}
_BY_START: dict[str, list[LineFormat]] = {"word": [], "digit": [], "space": [], "other": []}
for _f in FORMATS:
    if _f.prefix:
        _BY_PREFIX3.setdefault(_f.prefix[:3], []).append(_f)
    else:
        for _kind in (_BY_START if _f.starts == "any" else _f.starts.split()):
            _BY_START[_kind].append(_f)

# High-volume training and TTT progress lines: only the prefix formats (step:...) can match them.
_PROGRESS_PREFIXES = ("step:", "tttg:", "ttp:", "ttpp:", "ttpr:", "ttt_progress:", "ttt_chunk",
                      "warmup_step", "loop_warmup_step")


def _line_start(line: str) -> str:
    first = line[0]
    if first.isalpha() or first == "_":
        return "word"
    if first.isdigit():
        return "digit"
    if first in " \t":
        return "space"
    return "other"


# Lines that begin a new launch of the training script. A new run starts at one of these when
# the current run has already produced training or evaluation output.
_HPARAM_HEADER = re.compile(r"^(?:Hyperparameters:|--- Hyperparameters ---)\s*$")
_HPARAM_ITEM = re.compile(r"^\s+(?P<k>[A-Za-z_][\w.\-]*): ?(?P<v>.*?)\s*$")
_KV_EQ_LINE = re.compile(r"^[A-Za-z_][\w.]*=\S*(?:\s+[A-Za-z_][\w.]*=\S*)+\s*$")
_KV_ANY_LINE = re.compile(r"^[A-Za-z_][\w.]*[:=]\S*(?:\s+[A-Za-z_][\w.]*[:=]\S*)*\s*$")
_ENV_LINE = re.compile(r"^\s*(?P<k>[A-Z][A-Z0-9_]{1,63})=(?P<v>\S*)\s*$")  # "  SEED=42" launch echo
_KV_SINGLE_LINE = re.compile(r"^[A-Za-z_][\w.]*: \S+\s*$")
_KV_TOKEN = re.compile(r"([A-Za-z_][\w.]*)[:=](\S*)")
_HEADER_END = re.compile(r"^(?:warmup|loop_warmup|warmup_step)")

_EVAL_TIME = re.compile(r"(?:^|[\s(,])(?:eval_)?time[:=](?P<v>" + NUM + r")(?P<u>ms|s)\b")
_ELAPSED = re.compile(r"(?:^|[\s(,])elapsed=(?P<v>" + NUM + r")s\b")
_STEP_AVG = re.compile(r"\b(?:step_)?avg:(?P<v>" + NUM + r")ms\b")
_PARAM_TOKEN = re.compile(r"([A-Za-z_][\w]*)[:=]([^\s,()]+)")

# --- source-code dump heuristics (log_formats.md §1.2) --------------------------------------
_SEPARATOR = re.compile(r"^={40,}\s*$")
_CODE_START = re.compile(r"""^(?:import |from \S+ import |"|'|#!|# |[A-Za-z_]\w* ?= ?)""")
_CODE_FIRST_CHARS = frozenset(" \t#@)]}\"'([{")
_CODE_LIKE = re.compile(
    r"""^(?:(?:def|class|import|from|return|if|elif|else|for|while|with|try|except|finally|raise|assert"""
    r"""|global|nonlocal|del|pass|break|continue|yield|async|await|lambda)\b"""
    r"""|[A-Za-z_][\w.]*(?:\[[^\]]*\])?(?:\s*,\s*[A-Za-z_][\w.]*)*\s*(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)"""
    r"""|[A-Za-z_][\w.]*\()""")
_STRONG_CODE = re.compile(r"^(?:[ \t]*(?:async )?def \w|[ \t]*class \w|import \w|from [\w.]+ import |if __name__)")
_MIN_STRONG_CODE_LINES = 3
_MIN_CODE_SHARE = 0.9

"""The hyperparameters a run printed, and the difference between a rerun's and the claimed log's.

Two dialects are read, both from the part of a log before its first training or warm-up line:

- a ``Hyperparameters:`` block of indented ``  name: value`` lines (PR#1394-style scripts);
- ``name:value`` lines of the baseline style (``train_batch_tokens:524288 train_seq_len:1024
  iterations:20000``), where every word of the line is ``name:value`` or ``name=value``.

Reading starts after the last separator line of ``=`` (baseline scripts end their source dump
with one) and lines that look like code (parentheses, quotes, braces, `` = ``, a trailing comma)
are never read, so a source dump at the top of a log adds nothing.

``diff_hyperparameters`` sorts every difference into one of three kinds:

- **requested**: the name belongs to a variable the rerun set on purpose (``--env``, the data
  options), or is a path under such a variable's folder;
- **explained**: it follows from running elsewhere, not from the configuration: the process
  count (``world_size``, ``rank``, ``grad_accum_steps`` when the rerun used another process
  count than the claimed run), the run's identity (``run_id``, ``logfile``), software versions,
  and file paths that differ only in the folder holding the same file;
- **unrequested**: everything else, including a name printed on one side only. These mean the
  rerun did not run the claimed configuration.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from ..parsers.logs import match_formats

_BLOCK_HEADER = re.compile(r"^\s*Hyperparameters:\s*$")
_BLOCK_ITEM = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_.]*)\s*:\s?(.*)$")
_PAIR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[:=](\S*)$")
_WARMUP = re.compile(r"^[a-z_]*warmup[a-z_]*:\s*(\d+/\d+|enabled)")
_CODE_LIKE = re.compile(r"[()\"'{}\[\]]| = |,$")
_SEPARATOR = re.compile(r"^\s*={20,}\s*$")
# Names whose value is about this run, not its configuration.
IDENTITY_NAMES = frozenset({"run_id", "logfile", "log_file", "log_path", "logdir", "log_dir"})
TOPOLOGY_NAMES = frozenset({"world_size", "rank", "local_rank", "distributed", "is_main_process", "master_process",
                            "grad_accum_steps", "grad_accum", "num_gpus", "nproc", "ddp", "ddp_world_size"})
SOFTWARE_NAMES = frozenset({"torch", "torch_version", "pytorch_version", "cuda", "cuda_version", "python",
                            "python_version", "hostname", "device_name", "gpu", "gpu_name"})
# Baseline-style lines that report measurements or the data, not settings (the whole line is skipped).
_NOT_SETTINGS = frozenset({"step", "val_loss", "val_bpb", "train_loss", "train_time", "step_avg", "model_params",
                           "peak", "val_tokens", "train_tokens", "train_shards", "val_loader", "train_loader",
                           "throughput"})


def is_warmup_line(text: str) -> bool:
    """``warmup_step: 3/20``, ``loop_warmup:enabled ...``: the compile and warm-up phase."""
    return bool(_WARMUP.match(text.strip()))


def _is_training_line(text: str) -> bool:
    return any(fid.startswith(("val_step", "train_step")) for fid in match_formats(text[:2000]))


def parse_hyperparameters(text: str) -> dict[str, str]:
    """name -> printed value, from the part of the log before training starts (first run only)."""
    found: dict[str, str] = {}
    in_block = False
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if is_warmup_line(line) or _is_training_line(line)), len(lines))
    # A source dump at the top of the log ends with a separator line of '='; settings follow it.
    separators = [i for i in range(end) if _SEPARATOR.match(lines[i])]
    start = separators[-1] + 1 if separators else 0
    for line in lines[start:end]:
        if _BLOCK_HEADER.match(line):
            in_block = True
            continue
        if in_block:
            m = _BLOCK_ITEM.match(line)
            if m and not _CODE_LIKE.search(m.group(2)):
                found.setdefault(m.group(1).lower(), m.group(2).strip())
                continue
            in_block = False
        words = line.split()
        if not words or _CODE_LIKE.search(line):
            continue
        pairs = [_PAIR.match(w) for w in words]
        if not all(pairs) or pairs[0].group(1).lower() in _NOT_SETTINGS:
            continue
        for m in pairs:
            name = m.group(1).lower()
            if name not in _NOT_SETTINGS and m.group(2) != "":
                found.setdefault(name, m.group(2))
    return found


def _same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    booleans = {"true": "1", "false": "0"}
    return booleans.get(a.lower(), a) == booleans.get(b.lower(), b)


def _is_path(value: str) -> bool:
    return "/" in value and " " not in value and "://" not in value


def _same_file_elsewhere(a: str, b: str) -> bool:
    """Both are paths naming the same file (or pattern) in a folder of the same name."""
    if not (_is_path(a) and _is_path(b)):
        return False
    pa, pb = PurePosixPath(a.rstrip("/")), PurePosixPath(b.rstrip("/"))
    if pa.name != pb.name:
        return False
    return pa.parent.name == pb.parent.name or "" in (pa.parent.name, pb.parent.name)


def _under(value: str, roots: list[str]) -> bool:
    return _is_path(value) and any(value.startswith(root.rstrip("/") + "/") for root in roots if root)


def diff_hyperparameters(claimed: dict[str, str], rerun: dict[str, str], *, requested: dict[str, str],
                         requested_paths: list[str], topology_changed: bool) -> dict[str, Any]:
    """Every difference between the claimed and the rerun's hyperparameters, sorted by kind.

    ``requested`` maps a hyperparameter name to the option that set it (``--env MAX_WALLCLOCK_SECONDS``);
    ``requested_paths`` are the folders the rerun pointed its data variables at.
    """
    requested_out, explained, unrequested = [], [], []
    same = 0
    for name in sorted(set(claimed) | set(rerun)):
        a, b = claimed.get(name), rerun.get(name)
        if a is not None and b is not None and _same_value(a, b):
            same += 1
            continue
        entry = {"name": name, "claimed": a, "rerun": b}
        if name in requested:
            requested_out.append({**entry, "because": requested[name]})
        elif b is not None and _under(b, requested_paths):
            requested_out.append({**entry, "because": "under a data folder the rerun was given"})
        elif name in IDENTITY_NAMES:
            explained.append({**entry, "because": "identifies the run, not its configuration"})
        elif name in TOPOLOGY_NAMES and topology_changed:
            explained.append({**entry, "because": "follows from the process count"})
        elif name in SOFTWARE_NAMES:
            explained.append({**entry, "because": "software of the machine"})
        elif a is not None and b is not None and _same_file_elsewhere(a, b):
            explained.append({**entry, "because": "the same file in another folder"})
        else:
            unrequested.append(entry)
    return {"compared": len(set(claimed) | set(rerun)), "same": same, "requested": requested_out,
            "explained": explained, "unrequested": unrequested}


__all__ = ["parse_hyperparameters", "diff_hyperparameters", "is_warmup_line", "IDENTITY_NAMES", "TOPOLOGY_NAMES"]

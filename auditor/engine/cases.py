"""Record folders for ``CodeCase`` examples and annotated fixture files.

A case becomes a minimal record folder: ``train_gpt.py`` is the snippet (wrapped in a
self-extracting lzma/base85 layer when the case asks), optional helper files, and one
training log per set of logged hyperparameters. The test suite and the precision/recall
benchmark build their inputs here, so both audit exactly the same folders.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..rulebase import RECORD_TRACK, CodeCase
from ..wrappers import make_wrapper

CASE_FOLDER = "2026-04-20_LegalityCase"


def case_source(case: CodeCase) -> str:
    """The readable source of a case, as its line numbers count it."""
    return textwrap.dedent(case.code).lstrip("\n")


def log_text(hyperparameters: dict[str, str], seed: int) -> str:
    """A training log in the baseline's format that prints ``hyperparameters``."""
    lines = [f"seed:{seed}", "world_size:8 grad_accum_steps:1", "Hyperparameters:"]
    lines += [f"  {k}: {v}" for k, v in hyperparameters.items()]
    lines += [
        "step:1000/20000 train_loss:2.9000 train_time:60000ms step_avg:60.00ms",
        "stopping_early: wallclock_cap train_time:590000ms step:9800/20000",
        "Total submission size int6+lzma: 15000000 bytes",
        "final_int6_sliding_window_exact val_loss:1.90000000 val_bpb:1.12000000",
    ]
    return "\n".join(lines) + "\n"


def build_code_case_folder(case: CodeCase, root: Path, track: str = RECORD_TRACK) -> Path:

    folder = root / "records" / track / CASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    source = case_source(case)
    text = make_wrapper(source, codec=case.wrap) if case.wrap else source
    (folder / "train_gpt.py").write_text(text, encoding="utf-8")
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    logs = case.log_hyperparameters
    if isinstance(logs, dict):
        logs = [logs]
    for i, values in enumerate(logs or []):
        seed = 42 + i
        (folder / f"train_seed{seed}.log").write_text(log_text(values, seed), encoding="utf-8")
    return folder


def build_source_folder(source: str, root: Path, name: str, *, wrap: str | None = None,
                        files: dict[str, str] | None = None, logs: list[dict[str, str]] | None = None,
                        track: str = RECORD_TRACK) -> Path:
    """A record folder for a whole fixture script."""

    folder = root / "records" / track / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_gpt.py").write_text(make_wrapper(source, codec=wrap) if wrap else source, encoding="utf-8")
    for rel, content in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    for i, values in enumerate(logs or []):
        seed = 42 + i
        (folder / f"train_seed{seed}.log").write_text(log_text(values, seed), encoding="utf-8")
    return folder

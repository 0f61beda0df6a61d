"""Turning a rule's examples into record folders the audit can run on.

The test suite runs every rule's VALID and INVALID cases through these builders, so a rule's
examples are its tests. A ``FolderCase`` is the bundled example record with edits; a
``CodeCase`` becomes a minimal record folder: ``train_gpt.py`` is the snippet (wrapped in a
self-extracting layer when the case asks), optional helper files, and one training log per
set of logged hyperparameters. The test suite and the precision/recall benchmark build their
inputs here, so both audit exactly the same folders.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

from .bundled import bundled_example
from .rulebase import RECORD_TRACK, CodeCase, CopyOf, FolderCase, Move
from .wrappers import make_wrapper


def example_record() -> Path:
    return bundled_example()


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def apply_edits(folder: Path, edits: dict[str, Any], json_patch: dict[str, Any]) -> None:
    for rel, edit in edits.items():
        path = folder / rel
        if edit is None:
            path.unlink(missing_ok=True)
        elif isinstance(edit, Move):
            dest = folder / edit.to
            dest.parent.mkdir(parents=True, exist_ok=True)
            path.rename(dest)
        elif isinstance(edit, CopyOf):
            shutil.copyfile(folder / edit.source, path)
        elif isinstance(edit, (str, bytes)):
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(edit, bytes):
                path.write_bytes(edit)
            else:
                path.write_text(edit, encoding="utf-8")
        elif callable(edit):
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            new = edit(text)
            if isinstance(new, bytes):
                path.write_bytes(new)
            else:
                path.write_text(new, encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
            for pattern, replacement in edit:
                new, count = re.subn(pattern, replacement, text)
                if count == 0:
                    raise ValueError(f"case edit {pattern!r} matches nothing in {rel}")
                text = new
            path.write_text(text, encoding="utf-8")
    if json_patch:
        path = folder / "submission.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        _merge(data, json_patch)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_case_folder(case: FolderCase, root: Path, track: str = RECORD_TRACK) -> Path:
    """Copy the example record under ``root/records/<track>/`` and apply the case's edits."""
    base = example_record()
    folder = root / "records" / track / (case.folder_name or base.name)
    shutil.copytree(base, folder)
    apply_edits(folder, case.edits, case.json)
    return folder


# ---- code cases and fixture scripts ------------------------------------------------------

CASE_FOLDER = "2026-04-20_LegalityCase"


def case_source(case: CodeCase) -> str:
    """The readable source of a case, as its line numbers count it."""
    return textwrap.dedent(case.code).lstrip("\n")


def log_text(hyperparameters: dict[str, str], seed: int, printed: tuple[str, ...] = ()) -> str:
    """A training log in the baseline's format that prints ``hyperparameters`` and then the
    ``printed`` lines."""
    lines = [f"seed:{seed}", "world_size:8 grad_accum_steps:1", "Hyperparameters:"]
    lines += [f"  {k}: {v}" for k, v in hyperparameters.items()]
    lines += list(printed)
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
    if not logs and case.log_lines:
        logs = [{}]
    for i, values in enumerate(logs or []):
        seed = 42 + i
        (folder / f"train_seed{seed}.log").write_text(log_text(values, seed, case.log_lines), encoding="utf-8")
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

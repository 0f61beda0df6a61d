"""Turning a rule's examples into folders and code the audit can run on.

The test suite runs every rule's VALID and INVALID cases through these builders, so a rule's
examples are its tests. The base of every ``FolderCase`` is the bundled example record.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from .bundled import bundled_example
from .rulebase import CopyOf, FolderCase, Move, RECORD_TRACK


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

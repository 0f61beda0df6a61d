"""The base commit's merged records, for the significance test of a pull request.

``pgolf-audit pr`` tests a new record against the records already on its base branch: the
record-track folders of the base commit (``records/track_10min_16mb/<folder>``), exported with
only what the reference needs (``submission.json`` and the logs, from git's object store, no
checkout), into a scratch records tree. The significance check then takes the best of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import Any

from .git import GitError, list_tree, run_git
from .tracks import RECORD_TRACK

REFERENCE_SUFFIXES = (".log", ".txt", ".json")
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024


def export_base_records(repo: Path, sha: str, dest: Path) -> int:
    """Write the data files of the base commit's record-track folders under ``dest``; the
    number of folders exported."""
    prefix = f"records/{RECORD_TRACK}"
    try:
        entries = list_tree(repo, sha, prefix)
    except GitError:
        return 0
    folders: set[str] = set()
    total = 0
    for entry in entries:
        parts = PurePosixPath(entry.path).parts
        # records/track_10min_16mb/<folder>/<file>: the folder's own files (logs may sit one level down)
        if entry.kind != "file" or len(parts) < 4 or len(parts) > 5 or any(p in ("..", ".") for p in parts):
            continue
        if not parts[-1].lower().endswith(REFERENCE_SUFFIXES) or (entry.size or 0) > MAX_FILE_BYTES:
            continue
        if total + (entry.size or 0) > MAX_TOTAL_BYTES:
            break
        target = dest.joinpath(*parts[1:])
        if not target.resolve().is_relative_to(dest.resolve()):
            continue
        try:
            data = run_git(repo, "cat-file", "blob", entry.object_id)
        except GitError:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        total += len(data)
        folders.add(parts[2])
    return len(folders)


def with_base_records(options: Any, repo: Path, sha: str, scratch: Path) -> Any:
    """``options`` with the base commit's records as the significance reference, unless the user
    named a reference (``--against``/``--records-root``) or the base holds no record folder."""
    if getattr(options, "against", None) is not None or getattr(options, "records_root", None) is not None:
        return options
    root = scratch / "base-records"
    if export_base_records(repo, sha, root) == 0:
        return options
    return dataclasses.replace(options, records_root=root, records_root_label=f"records of the base commit {sha[:12]}")

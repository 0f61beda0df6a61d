"""The example record bundled with the package (``auditor/example_record/``, package data).

``pgolf-audit`` with no path audits it, and every rule's ``FolderCase`` examples are edits of
it. Not to be confused with ``examples/workflows/`` at the repository root, which holds GitHub
workflows that use the Action.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .tracks import RECORD_TRACK


class ExampleMissing(FileNotFoundError):
    """The installation lacks the bundled example record (package data left out)."""


def bundled_example() -> Path:
    """The folder of the bundled example record."""
    base = resources.files("pgolf_audit").joinpath("example_record", "records", RECORD_TRACK)
    try:
        folders = sorted(p for p in base.iterdir() if p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        folders = []
    if not folders:
        raise ExampleMissing("the bundled example record is missing from this installation")
    return Path(str(folders[0]))

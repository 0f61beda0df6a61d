"""Safe, bounded access to a record folder.

Submissions are untrusted input. Reading never follows a symlink out of the folder, never
reads more than a bounded number of bytes, never descends without limit, and turns every OS
error into a problem the audit reports instead of a traceback.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 32 * 1024 * 1024     # no real record file is near this; logs are < 2 MB
MAX_FILES = 2000
MAX_DEPTH = 6
SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", "node_modules"}

# Files that make a directory a record folder (as opposed to a folder of record folders).
RECORD_MARKERS = re.compile(r"^(README\.md|submission[\w\-]*\.json|train[\w\-]*\.py|.*\.log|train[\w\-]*\.txt)$", re.I)


class FolderError(Exception):
    """A path that cannot be audited at all (missing, not a directory, unreadable)."""


@dataclass(frozen=True)
class FileEntry:
    path: str            # POSIX path relative to the folder
    size: int
    via_symlink: bool    # reached through a symlink that stays inside the folder


@dataclass
class RecordFolder:
    root: Path
    files: dict[str, FileEntry] = field(default_factory=dict)
    # (relative path, problem) for entries that were not read: symlinks leaving the folder,
    # special files, unreadable entries, listing truncated.
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.root.name

    @classmethod
    def open(cls, root: Path) -> "RecordFolder":
        try:
            st = root.stat()
        except OSError as exc:
            raise FolderError(f"{root}: cannot open ({exc.strerror or exc})") from None
        if not stat.S_ISDIR(st.st_mode):
            raise FolderError(f"{root}: not a directory")
        try:
            resolved = root.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise FolderError(f"{root}: cannot resolve the path ({exc})") from None
        folder = cls(root=resolved)
        folder._scan()
        return folder

    def _scan(self) -> None:
        root = self.root
        stack: list[tuple[Path, int]] = [(root, 0)]
        while stack:
            directory, depth = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                self.problems.append((self._rel(Path(directory)) or ".", f"cannot list directory ({exc.strerror or exc})"))
                continue
            for entry in entries:
                rel = self._rel(Path(entry.path))
                if not _is_utf8_name(rel):
                    self.problems.append((ascii(rel), "file name is not valid UTF-8; not read"))
                    continue
                if _CONTROL_CHARACTERS.search(rel):  # newlines and terminal escapes would reach reports
                    self.problems.append((ascii(rel), "file name contains control characters; not read"))
                    continue
                try:
                    if entry.is_symlink():
                        target = Path(entry.path).resolve()
                        if not _is_within(target, root):
                            self.problems.append((rel, f"symlink pointing outside the folder ({os.readlink(entry.path)}); not followed"))
                            continue
                        if target.is_dir():
                            self.problems.append((rel, "symlink to a directory; not followed"))
                            continue
                        if not target.is_file():
                            self.problems.append((rel, "dangling or special symlink; not followed"))
                            continue
                        self._add(rel, target.stat().st_size, via_symlink=True)
                    elif entry.is_dir(follow_symlinks=False):
                        if entry.name in SKIP_DIRS:
                            continue
                        if depth + 1 > MAX_DEPTH:
                            self.problems.append((rel, f"deeper than {MAX_DEPTH} levels; not listed"))
                            continue
                        stack.append((Path(entry.path), depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        self._add(rel, entry.stat(follow_symlinks=False).st_size, via_symlink=False)
                    else:
                        self.problems.append((rel, "special file (not a regular file); not read"))
                except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
                    self.problems.append((rel, f"cannot inspect ({getattr(exc, 'strerror', None) or exc})"))

    def _add(self, rel: str, size: int, via_symlink: bool) -> None:
        # The files a record is judged on (README, submission.json, scripts, logs at the top)
        # are listed even past the cap, so a folder padded with thousands of files cannot make
        # them look missing; the cap still bounds the listing.
        essential = "/" not in rel and (RECORD_MARKERS.match(rel) or rel.endswith((".py", ".json")))
        if len(self.files) >= MAX_FILES and not (essential and len(self.files) < 2 * MAX_FILES):
            if not any(p[1].startswith("more than") for p in self.problems):
                self.problems.append((rel, f"more than {MAX_FILES} files; the rest were not listed"))
            return
        self.files[rel] = FileEntry(rel, size, via_symlink)

    def _rel(self, path: Path) -> str:
        try:
            return PurePosixPath(path.relative_to(self.root)).as_posix()
        except ValueError:
            return path.name

    # ---- reading ------------------------------------------------------------
    def read_bytes(self, rel: str, limit: int = MAX_FILE_BYTES) -> bytes:
        """Bytes of a listed file; raises FolderError with a reviewer-readable reason."""
        entry = self.files.get(rel)
        if entry is None:
            raise FolderError(f"{rel}: not a readable file of this folder")
        if entry.size > limit:
            raise FolderError(f"{rel}: {entry.size:,} bytes is over the {limit:,}-byte reading limit; not read")
        try:
            path = (self.root / rel).resolve()
        except (OSError, RuntimeError) as exc:
            raise FolderError(f"{rel}: cannot resolve ({exc})") from None
        if not _is_within(path, self.root):
            raise FolderError(f"{rel}: resolves outside the folder; not read")
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise FolderError(f"{rel}: cannot read ({exc.strerror or exc})") from None
        if len(data) > limit:
            raise FolderError(f"{rel}: grew past the {limit:,}-byte reading limit while reading; not read")
        return data

    def read_text(self, rel: str, limit: int = MAX_FILE_BYTES) -> tuple[str, list[str]]:
        """Text of a listed file decoded as UTF-8 (invalid bytes replaced) and the decoding problems."""
        data = self.read_bytes(rel, limit)
        return decode_text(data, rel)

    def read_text_or_none(self, rel: str) -> str | None:
        try:
            return self.read_text(rel)[0]
        except FolderError:
            return None


def decode_text(data: bytes, rel: str) -> tuple[str, list[str]]:
    problems: list[str] = []
    if b"\x00" in data[:8192]:
        problems.append(f"{rel}: looks binary (NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        problems.append(f"{rel}: invalid UTF-8 (first bad byte at offset {exc.start}); undecodable bytes replaced")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, problems


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _is_utf8_name(name: str) -> bool:
    """False for a name whose bytes are not UTF-8 (os.fsdecode turned them into surrogates)."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


# ---- discovery ----------------------------------------------------------------

def looks_like_record_folder(directory: Path) -> bool:
    try:
        return any(RECORD_MARKERS.match(e.name) and e.is_file() for e in os.scandir(directory))
    except OSError:
        return False


def discover_record_folders(path: Path, max_depth: int = 4) -> list[Path]:
    """A record folder itself, or every record folder below ``path`` (e.g. a records/ tree).

    Recursion stops at the first level that looks like a record folder, so a record's own
    subfolders (logs/, ttt_pr1767/) are never taken for records.
    """
    if looks_like_record_folder(path):
        return [path]
    found: list[Path] = []
    if max_depth <= 0:
        return found
    try:
        children = [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and e.name not in SKIP_DIRS]
    except OSError:
        return found
    for child in sorted(children, key=lambda e: e.name):
        found.extend(discover_record_folders(Path(child.path), max_depth - 1))
    return found


TRACK_DIR_RE = re.compile(r"^track_[\w\-]+$")
FOLDER_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[_\-]")


def folder_date(name: str) -> str | None:
    """The date a record folder's name starts with (``2026-04-09_Name``), or None."""
    m = FOLDER_DATE_RE.match(name)
    return m.group(1) if m else None


def track_from_path(path: Path) -> str | None:
    for part in reversed(path.resolve().parts):
        if TRACK_DIR_RE.match(part):
            return part
    return None

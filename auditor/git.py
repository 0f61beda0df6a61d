"""git plumbing for pull-request mode: reading revisions, the diff and trees, and exporting a
folder's files from git's object store.

Every call is an argument list (never a shell) with a time limit, no credential prompt, no
optional locks and literal pathspecs; nothing is checked out and no git attribute or filter
of the repository applies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# Bounds on what is exported from the head commit (a real record folder is a few MB).
EXPORT_MAX_FILE_BYTES = 32 * 1024 * 1024
EXPORT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
EXPORT_MAX_FILES = 2000
GIT_TIMEOUT_S = 120


class GitError(Exception):
    """git could not answer (not a repository, unknown revision, shallow history, ...)."""


# ---- git plumbing -----------------------------------------------------------------------

def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never prompt for credentials, never take optional locks in someone's checkout, read
    # folder names as literal paths (a name may hold `*`, `?` or `[`), and keep messages in
    # one language so errors read the same everywhere.
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_LITERAL_PATHSPECS="1", LC_ALL="C", LANGUAGE="C")
    return env


def run_git(repo: Path, *args: str) -> bytes:
    if shutil.which("git") is None:
        raise GitError("git is not installed (PR mode reads the diff with git)")
    command = ["git", "-C", str(repo), "-c", "core.quotepath=off", *args]
    try:
        done = subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT_S, env=_git_env(), check=False)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror or exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} failed with exit code {done.returncode}")
    return done.stdout


def _check_repository(repo: Path) -> None:
    if not repo.exists():
        raise GitError(f"{repo}: no such directory")
    try:
        run_git(repo, "rev-parse", "--git-dir")
    except GitError as exc:
        raise GitError(f"{repo} is not a git repository ({exc})") from None


def resolve_commit(repo: Path, rev: str) -> str:
    if not rev or rev.startswith("-"):
        raise GitError(f"invalid revision {rev!r}")
    try:
        out = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    except GitError:
        out = b""
    sha = out.decode().strip()
    if not sha:
        raise GitError(f"unknown revision {rev!r} in {repo} (fetch it first, e.g. git fetch origin {rev})")
    return sha


def is_shallow(repo: Path) -> bool:
    try:
        return run_git(repo, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except GitError:
        return False


def find_merge_base(repo: Path, base_sha: str, head_sha: str) -> str:
    try:
        out = run_git(repo, "merge-base", base_sha, head_sha).decode().strip()
    except GitError:
        out = ""
    if out:
        return out
    if is_shallow(repo):
        raise GitError(
            "this is a shallow clone and the merge base of the two revisions is not in its history: "
            "fetch the full history (actions/checkout with fetch-depth: 0, or git fetch --unshallow)"
        )
    raise GitError(f"{base_sha[:12]} and {head_sha[:12]} have no common ancestor")


@dataclass(frozen=True)
class Change:
    """One row of ``git diff --name-status``: ``path`` is the path at the head (for a deletion,
    the deleted path); ``old_path`` is the source of a rename or copy."""

    status: str
    path: str
    old_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "path": self.path, "old_path": self.old_path}


def parse_name_status(raw: bytes) -> list[Change]:
    """Parse ``git diff --name-status -z`` output: ``S\\0path\\0`` or ``R100\\0old\\0new\\0``."""
    fields = raw.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    changes: list[Change] = []
    i = 0
    while i < len(fields):
        status = fields[i].decode("ascii", "replace")[:1]
        if status in ("R", "C"):
            if i + 2 >= len(fields):
                raise GitError("truncated git diff output")
            old, new = _decode_path(fields[i + 1]), _decode_path(fields[i + 2])
            changes.append(Change(status, new, old))
            i += 3
        else:
            if i + 1 >= len(fields):
                raise GitError("truncated git diff output")
            changes.append(Change(status, _decode_path(fields[i + 1])))
            i += 2
    return changes


def _decode_path(raw: bytes) -> str:
    # Paths are bytes in git; undecodable bytes survive as escapes rather than failing.
    return raw.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace").decode("utf-8")


def diff_changes(repo: Path, merge_base: str, head_sha: str) -> list[Change]:
    raw = run_git(repo, "diff", "--name-status", "-z", "--find-renames", "--no-ext-diff", "--no-textconv",
                  f"{merge_base}..{head_sha}", "--")
    return parse_name_status(raw)


@dataclass(frozen=True)
class TreeEntry:
    path: str
    kind: str          # "file", "symlink", "submodule"
    size: int | None
    object_id: str


def list_tree(repo: Path, rev: str, prefix: str | None = None) -> list[TreeEntry]:
    args = ["ls-tree", "-r", "-z", "-l", "--full-tree", rev]
    if prefix:
        args += ["--", prefix.rstrip("/") + "/"]
    entries = []
    for record in run_git(repo, *args).split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, otype, object_id, size = meta.decode().split(None, 3)
        kind = {"120000": "symlink", "160000": "submodule"}.get(mode, "file" if otype == "blob" else otype)
        entries.append(TreeEntry(_decode_path(raw_path), kind, int(size) if size.strip().isdigit() else None, object_id))
    return entries


def list_paths(repo: Path, rev: str, prefix: str) -> list[str]:
    raw = run_git(repo, "ls-tree", "-r", "-z", "--name-only", "--full-tree", rev, "--", prefix.rstrip("/") + "/")
    return [_decode_path(p) for p in raw.split(b"\0") if p]


def _safe_destination(root: Path, rel: str) -> Path | None:
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        return None
    return root.joinpath(*parts)


@dataclass
class Export:
    files: int = 0
    bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


def export_folder(repo: Path, head_sha: str, folder: str, dest_root: Path) -> Export:
    """Write the regular files of ``folder`` as of ``head_sha`` under ``dest_root/folder``.

    Reads blobs from git's object store (``git cat-file``), so no checkout happens and no
    git attribute (export-ignore, filters) of the PR can hide or alter a file. Symlinks,
    submodules and files over the bounds are not written; they are listed as skipped.
    """
    result = Export()
    for entry in list_tree(repo, head_sha, folder):
        if entry.kind != "file":
            result.skipped.append({"path": entry.path, "reason": f"{entry.kind}, not exported"})
            continue
        size = entry.size or 0
        if size > EXPORT_MAX_FILE_BYTES:
            result.skipped.append({"path": entry.path, "reason": f"{size:,} bytes, over the {EXPORT_MAX_FILE_BYTES:,}-byte export bound"})
            continue
        if result.files >= EXPORT_MAX_FILES or result.bytes + size > EXPORT_MAX_TOTAL_BYTES:
            result.skipped.append({"path": entry.path, "reason": "export bound reached (files or total bytes)"})
            continue
        dest = _safe_destination(dest_root, entry.path)
        if dest is None:  # also names that were not UTF-8: _decode_path left backslash escapes
            result.skipped.append({"path": entry.path, "reason": UNSAFE_PATH})
            continue
        if os.path.lexists(dest):  # a crafted tree can list one path twice
            result.skipped.append({"path": entry.path, "reason": "duplicate tree entry, not exported"})
            continue
        data = run_git(repo, "cat-file", "blob", entry.object_id)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        except OSError as exc:  # a name over the file system's limit, a file where a folder is due
            result.skipped.append({"path": entry.path, "reason": f"cannot be written ({exc.strerror or exc}), not exported"})
            continue
        result.files += 1
        result.bytes += len(data)
    return result


UNSAFE_PATH = "unsafe path, not exported"
# Skips that leave out files a record folder may need: the audit of that folder is incomplete.
INCOMPLETE_EXPORT = ("unsafe path", "duplicate tree entry", "cannot be written", "export bound reached")

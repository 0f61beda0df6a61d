"""Pull-request mode: what a PR changes, whether that is the shape a submission must have, and
the audit of the record folder(s) it adds.

A submission PR adds exactly one new folder under ``records/<track>/`` and changes nothing
else (R-FMT-SINGLE-FOLDER). ``pgolf-audit pr --repo PATH --base REV --head REV`` reads the
diff between the merge base and the head with ``git`` (argument lists, never a shell), runs
the PR-shape rules (PG61x) over it, then exports each added folder *as of the head commit*
from git's object store into a temporary directory (bounded in size; symlinks and submodules
are never materialised) and audits that copy. The user's working tree is never touched, and
nothing from the PR is executed.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

import click

from . import registry
from .audit import audit_folder_isolated, tool_info
from .base_records import with_base_records
from .context import AuditOptions
from .folder import FolderError, discover_record_folders
from .git import (
    EXPORT_MAX_FILE_BYTES, INCOMPLETE_EXPORT, Change, GitError, _check_repository, diff_changes, export_folder,
    find_merge_base, list_paths, list_tree, resolve_commit,
)
from .model import AuditReport, CheckOutcome, Finding, PrSection
from .output import parse_outputs, write_report
from .render import RENDERERS
from .rulebase import PrCase, PrRule
from .runner import run, skipped
from .tracks import TRACKS
from .usage import UsageFailure, validated_selection

STATUS_WORDS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied", "T": "type changed",
                "U": "unmerged", "X": "unknown"}

# ---- where a path sits ------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where a repository path sits relative to the records tree.

    area: ``outside`` (not under records/), ``records-root`` (a file directly in records/),
    ``track-root`` (a file directly in a track directory) or ``record`` (inside a record
    folder, named by ``folder``). ``track_dir`` is the directory under records/ holding the
    folder (None when the folder sits directly in records/); ``known_track`` says whether it
    is one of the challenge's tracks.
    """

    area: str
    folder: str | None = None
    track_dir: str | None = None
    known_track: bool = False


@dataclass
class PullRequest:
    """The diff of a pull request, as the PR-shape rules see it."""

    base: str
    head: str
    merge_base: str
    changes: list[Change]
    base_files: frozenset[str] = frozenset()     # files under records/ at the merge base
    special: dict[str, str] = field(default_factory=dict)  # head path -> symlink/submodule/oversized

    @classmethod
    def from_case(cls, case: PrCase) -> "PullRequest":
        changes = []
        for row in case.changes:
            if row[0] in ("R", "C"):
                changes.append(Change(row[0], row[2], row[1]))
            else:
                changes.append(Change(row[0], row[1]))
        return cls("base", "head", "0" * 40, changes, frozenset(case.existing), dict(case.special))

    # -- classification --
    @cached_property
    def _dirs_holding_files(self) -> frozenset[str]:
        """Directories directly under records/ that directly hold a file (at base or head):
        such a directory is a record folder itself, not a (misnamed) track directory."""
        paths = set(self.base_files) | {c.path for c in self.changes if c.status != "D"}
        out = set()
        for p in paths:
            parts = p.split("/")
            if len(parts) == 3 and parts[0] == "records":
                out.add(parts[1])
        return frozenset(out)

    def placement(self, path: str) -> Placement:
        parts = path.split("/")
        if parts[0] != "records" or len(parts) < 2:
            return Placement("outside")
        if len(parts) == 2:
            return Placement("records-root")
        top = parts[1]
        if top in TRACKS:
            if len(parts) == 3:
                return Placement("track-root", track_dir=top, known_track=True)
            return Placement("record", f"records/{top}/{parts[2]}", top, True)
        if len(parts) == 3 or top in self._dirs_holding_files:
            return Placement("record", f"records/{top}", None, False)
        return Placement("record", f"records/{top}/{parts[2]}", top, False)

    @cached_property
    def existing_folders(self) -> frozenset[str]:
        return frozenset(pl.folder for pl in map(self.placement, self.base_files) if pl.area == "record" and pl.folder)

    def touched(self) -> Iterator[tuple[Change, str, str]]:
        """(change, path, verb) for every path a change touches: a rename touches its old
        path (moved away) and its new path (added)."""
        for change in self.changes:
            if change.status in ("R", "C") and change.old_path:
                if change.status == "R":
                    yield change, change.old_path, f"moved to {change.path}"
                yield change, change.path, f"{'renamed' if change.status == 'R' else 'copied'} from {change.old_path}"
            else:
                yield change, change.path, STATUS_WORDS.get(change.status, change.status)

    @cached_property
    def new_folders(self) -> dict[str, list[str]]:
        """Record folders that do not exist at the merge base, with the head paths added in them."""
        out: dict[str, list[str]] = {}
        for change, path, _ in self.touched():
            if change.status == "D" or (change.status == "R" and path == change.old_path):
                continue
            pl = self.placement(path)
            if pl.area == "record" and pl.folder not in self.existing_folders:
                out.setdefault(pl.folder, []).append(path)
        return {k: sorted(v) for k, v in sorted(out.items())}

    @cached_property
    def existing_folder_changes(self) -> dict[str, list[tuple[str, str]]]:
        """Existing record folders the PR touches: folder -> [(path, verb)]."""
        out: dict[str, list[tuple[str, str]]] = {}
        for _, path, verb in self.touched():
            pl = self.placement(path)
            if pl.area == "record" and pl.folder in self.existing_folders:
                out.setdefault(pl.folder, []).append((path, verb))
        return dict(sorted(out.items()))

    @cached_property
    def outside_changes(self) -> list[tuple[str, str]]:
        return [(path, verb) for _, path, verb in self.touched() if self.placement(path).area == "outside"]

    @cached_property
    def loose_record_files(self) -> list[tuple[str, str, str]]:
        """(path, verb, area) for files directly in records/ or in a track directory."""
        return [(path, verb, pl.area) for _, path, verb in self.touched()
                for pl in [self.placement(path)] if pl.area in ("records-root", "track-root")]

    def shape_sentence(self) -> str:
        return describe_shape(self)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def describe_shape(pr: PullRequest) -> str:
    """One sentence saying what the PR changes, for the top of the review."""
    if not pr.changes:
        return "The pull request changes no file."
    parts = []
    new = pr.new_folders
    if new:
        listed = ", ".join(f"{folder} ({_plural(len(files), 'file')})" for folder, files in new.items())
        parts.append(f"adds {_plural(len(new), 'new record folder')}: {listed}")
    else:
        parts.append("adds no new record folder")
    existing = pr.existing_folder_changes
    if existing:
        n = sum(len(v) for v in existing.values())
        parts.append(f"touches {_plural(n, 'path')} in {_plural(len(existing), 'existing record folder')} "
                     f"({', '.join(existing)})")
    if pr.loose_record_files:
        parts.append(f"touches {_plural(len(pr.loose_record_files), 'file')} directly under records/ or a track directory")
    if pr.outside_changes:
        verbs: dict[str, int] = {}
        for _, verb in pr.outside_changes:
            key = verb.split()[0]
            verbs[key] = verbs.get(key, 0) + 1
        detail = ", ".join(f"{n} {v}" for v, n in sorted(verbs.items()))
        parts.append(f"touches {_plural(len(pr.outside_changes), 'path')} outside records/ ({detail})")
    clean = len(new) == 1 and len(parts) == 1
    sentence = "The pull request " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
    return sentence + (" and changes nothing else." if clean else ".")


# ---- running the PR-shape rules ----------------------------------------------------------

def pr_rules(select: list[str] | None, ignore: list[str] | None, preview: bool) -> list[tuple[type[PrRule], bool, str]]:
    out = []
    for cls in registry.all_rules():
        if issubclass(cls, PrRule):
            ok, reason = registry.is_selected(cls, select, ignore, preview)
            out.append((cls, ok, reason))
    return out


def check_pull_request(pr: PullRequest, select=None, ignore=None, preview=False,
                       rules: Iterable[type[PrRule]] | None = None) -> tuple[list[Finding], list[CheckOutcome]]:
    chosen = [(cls, True, "") for cls in rules] if rules is not None else pr_rules(select, ignore, preview)
    findings: list[Finding] = []
    checks: list[CheckOutcome] = []
    for cls, selected, reason in chosen:
        if not selected:
            checks.append(skipped(cls, reason))
            continue
        found, outcome = run(cls, pr, subject="pull request")
        findings.extend(found)
        checks.append(outcome)
    return findings, checks


# ---- reading a pull request from git --------------------------------------------------------

def read_pull_request(repo: Path, base: str, head: str) -> tuple[PullRequest, str, str]:
    """The PR between ``base`` and ``head`` (merge base to head, as GitHub shows it)."""
    _check_repository(repo)
    base_sha = resolve_commit(repo, base)
    head_sha = resolve_commit(repo, head)
    merge_base = find_merge_base(repo, base_sha, head_sha)
    changes = diff_changes(repo, merge_base, head_sha)
    base_files = frozenset(list_paths(repo, merge_base, "records"))
    pr = PullRequest(base, head, merge_base, changes, base_files)
    special: dict[str, str] = {}
    for folder in pr.new_folders:
        for entry in list_tree(repo, head_sha, folder):
            if entry.kind != "file":
                special[entry.path] = entry.kind
            elif entry.size is not None and entry.size > EXPORT_MAX_FILE_BYTES:
                special[entry.path] = "oversized"
    pr.special = special
    return pr, base_sha, head_sha


def audit_pull_request(repo: Path, base: str, head: str, options: Any) -> AuditReport:
    """The PR's shape findings plus the audit of every record folder it adds (as of head)."""
    pr, base_sha, head_sha = read_pull_request(repo, base, head)
    findings, checks = check_pull_request(pr, options.select, options.ignore, options.preview)
    section = PrSection(
        base=base, head=head, base_sha=base_sha, head_sha=head_sha, merge_base=pr.merge_base,
        changes=[c.to_json() for c in pr.changes], added_folders=list(pr.new_folders), shape=pr.shape_sentence(),
        findings=findings, checks=checks,
    )
    section.finalise()
    results = []
    errors: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pgolf-audit-pr-") as tmp:
        root = Path(tmp)
        # significance against the base commit's records
        options = with_base_records(options, repo, base_sha, Path(tempfile.mkdtemp(prefix="base-", dir=tmp)))
        for folder in pr.new_folders:
            exported = export_folder(repo, head_sha, folder, root)
            section.not_exported.extend(exported.skipped)
            left_out = [s for s in exported.skipped if s["reason"].startswith(INCOMPLETE_EXPORT)]
            if left_out:
                errors.append({"path": folder, "error": (
                    f"{len(left_out)} file(s) of this folder could not be exported for the audit "
                    f"({left_out[0]['path']!r}: {left_out[0]['reason']}); the audit of the folder is incomplete")})
            local = root.joinpath(*PurePosixPath(folder).parts)
            if not local.is_dir():
                errors.append({"path": folder, "error": "no regular file of this folder could be exported"})
                continue
            found = discover_record_folders(local) or [local]
            for record in found:
                display = PurePosixPath(record.relative_to(root)).as_posix()
                try:  # in its own process: a parser crash or hang costs this folder only
                    results.append(audit_folder_isolated(record, options, display))
                except FolderError as exc:
                    errors.append({"path": display, "error": str(exc)})
                section.audited_folders.append(display)
    return AuditReport(tool=tool_info(), results=results, errors=errors, pr=section)


# ---- the command ---------------------------------------------------------------------------

@click.command("pr")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="The git repository (a clone holding both revisions).")
@click.option("--base", required=True, help="The base revision (the target branch or its SHA).")
@click.option("--head", default="HEAD", show_default=True, help="The PR's head revision.")
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="markdown", show_default=True,
              help="Output format for stdout or a plain --output PATH.")
@click.option("--output", "-o", "outputs", multiple=True, metavar="[FMT:]PATH",
              help="Write the report to PATH (in --format), or FMT:PATH in another format; repeatable. "
                   "With any --output nothing is printed on stdout.")
@click.option("--ruleset", default=None, help="Ruleset id [default: the one in force on the submission date].")
@click.option("--select", multiple=True, help="Run only rules whose code starts with these prefixes.")
@click.option("--ignore", multiple=True, help="Skip rules whose code starts with these prefixes.")
@click.option("--preview", is_flag=True, help="Also run rules in preview status.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error", show_default=True,
              help="Lowest severity that makes the exit code 1.")
def pr_command(repo, base, head, fmt, outputs, ruleset, select, ignore, preview, fail_on):
    """Audit a pull request: its shape (one new record folder, nothing else) and the folder it adds.

    \b
    pgolf-audit pr --base origin/main --head HEAD
    pgolf-audit pr --repo . --base "$BASE_SHA" --head "$HEAD_SHA" -o json:report.json -o markdown:review.md

    Exit codes: 0 pass, 1 findings at or above --fail-on, 2 incomplete audit or bad input
    (not a git repository, unknown revision, shallow clone without the merge base).
    """
    select_codes, ignore_codes = validated_selection(ruleset, select, ignore)
    options = AuditOptions(ruleset=ruleset, select=select_codes, ignore=ignore_codes, preview=preview, fail_on=fail_on)
    try:
        report = audit_pull_request(repo, base, head, options)
    except GitError as exc:
        raise UsageFailure(str(exc)) from None
    write_report(report, parse_outputs(outputs, fmt, RENDERERS), fmt)
    sys.exit(report.exit_code(fail_on))

"""Everything the checks read about one record folder, loaded lazily and at most once.

Each piece is loaded on first use; a failure to load becomes a recorded problem (and the
checks that need the piece report INCOMPLETE), never an exception out of the audit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import libcst as cst

from .codebytes import CodeAccounting, account_code
from .cstutil import SourceParseError, parse_module
from .lines import LineTable
from .folder import FolderError, RecordFolder, folder_date, track_from_path
from .model import Location
from . import runs as runs_mod
from .parsers.logs import LogFile
from .runs import Run
from .parsers.readme import ReadmeClaims, parse_readme
from .parsers.submission_json import SubmissionClaims, SubmissionJsonError, parse_submission_json
from .rerun.result import RerunResult
from .tracks import NON_RECORD_TRACK, RECORD_TRACK, TRACKS
from .ruleset import Ruleset, TrackLimits
from .ruleset import for_date as ruleset_for_date
from .ruleset import get as get_ruleset
from .unwrap import UnwrapError, UnwrappedCode, unwrap
from .log_evidence import ConfigLine, scan_log_config
from .significance import Significance, measure as measure_significance

ENTRY_SCRIPT = "train_gpt.py"
ALT_ENTRY_RE = re.compile(r"^train[\w\-]*\.py$")


@dataclass
class AuditOptions:
    track: str | None = None
    ruleset: str | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    preview: bool = False
    fail_on: str = "error"
    against: Path | None = None        # the reference record folder for significance
    records_root: Path | None = None   # pick the best earlier record-track folder from here
    records_root_label: str | None = None  # what records_root is, in words (set by `pgolf-audit pr`: the base commit's records)
    jobs: int = 1
    # --- rerun: what ``pgolf-audit rerun`` measured, read by the PG8xx checks and copied to
    # ``FolderResult.rerun``; None when no rerun happened.
    rerun_result: RerunResult | None = None


@dataclass
class LoadProblem:
    path: str
    message: str


class AuditContext:
    def __init__(self, folder: RecordFolder, options: AuditOptions, display_path: str | None = None):
        self.folder = folder
        self.options = options
        self.display_path = display_path or str(folder.root)
        self.problems: list[LoadProblem] = [LoadProblem(p, m) for p, m in folder.problems]
        self._submission_error: str | None = None
        self.code_error: str | None = None
        self.code_parse_error: str | None = None
        self._parsed: dict[tuple[str, str], cst.Module] = {}

    # ---- measurements: computed once, read by the rules and by the report's tables --------
    @cached_property
    def significance(self) -> Significance:
        """The improvement over the reference record and its tests (PG502, ``stats``)."""
        return measure_significance(self)

    @cached_property
    def log_config(self) -> dict[str, list[ConfigLine]]:
        """Lines of the training logs that show an evaluation-time technique (PG410)."""
        return scan_log_config(self)

    # ---- rerun ------------------------------------------------------------------------
    @property
    def rerun(self) -> RerunResult | None:
        """What ``pgolf-audit rerun`` measured when it ran this folder, else None."""
        return self.options.rerun_result

    # ---- folder identity ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.folder.name

    @cached_property
    def folder_date(self) -> str | None:
        return folder_date(self.name)

    @cached_property
    def date(self) -> str | None:
        claims = self.submission
        if claims and claims.date and re.match(r"^\d{4}-\d{2}-\d{2}", claims.date):
            return claims.date[:10]
        return self.folder_date

    @cached_property
    def _track_and_source(self) -> tuple[str | None, str]:
        if self.options.track:
            return self.options.track, "--track"
        from_path = track_from_path(self.folder.root)
        if from_path in TRACKS:
            return from_path, "path"
        if self.submission and self.submission.track in TRACKS:
            return self.submission.track, "submission.json"
        if from_path:
            return from_path, "path (unknown track name)"
        return None, "unknown"

    @property
    def track(self) -> str | None:
        return self._track_and_source[0]

    @property
    def track_source(self) -> str:
        return self._track_and_source[1]

    @property
    def limits_track(self) -> str:
        """The track whose limits apply: an unknown track is held to the record track's
        limits (the stricter reading), and the review says so."""
        return self.track if self.track in TRACKS else RECORD_TRACK

    @property
    def is_record_track(self) -> bool:
        return self.limits_track == RECORD_TRACK

    @property
    def is_non_record_track(self) -> bool:
        return self.limits_track == NON_RECORD_TRACK

    @cached_property
    def ruleset(self) -> Ruleset:
        if self.options.ruleset:
            return get_ruleset(self.options.ruleset)
        return ruleset_for_date(self.date)

    @property
    def limits(self) -> TrackLimits:
        return self.ruleset.limits(self.limits_track)

    # ---- files ------------------------------------------------------------------------
    def read_text(self, rel: str) -> str | None:
        """Text of a file, recording why it could not be read."""
        try:
            text, problems = self.folder.read_text(rel)
        except FolderError as exc:
            self.problems.append(LoadProblem(rel, str(exc)))
            return None
        for p in problems:
            self.problems.append(LoadProblem(rel, p))
        return text

    # ---- submission.json ------------------------------------------------------------
    @cached_property
    def submission_files(self) -> list[str]:
        return sorted(p for p in self.folder.files if re.match(r"^submission[\w\-]*\.json$", p, re.I))

    @cached_property
    def submission_file(self) -> str | None:
        files = self.submission_files
        if "submission.json" in files:
            return "submission.json"
        return files[0] if files else None

    @property
    def submission_error(self) -> str | None:
        self.submission  # noqa: B018  (loading records the error)
        return self._submission_error

    @cached_property
    def submission(self) -> SubmissionClaims | None:
        rel = self.submission_file
        if rel is None:
            return None
        try:
            data = self.folder.read_bytes(rel)
            return parse_submission_json(data, rel)
        except (FolderError, SubmissionJsonError) as exc:
            self._submission_error = str(exc)
            self.problems.append(LoadProblem(rel, str(exc)))
            return None

    # ---- README -------------------------------------------------------------------------
    @cached_property
    def readme_file(self) -> str | None:
        if "README.md" in self.folder.files:
            return "README.md"
        for p in self.folder.files:
            if p.lower() == "readme.md":
                return p
        return None

    @cached_property
    def readme(self) -> ReadmeClaims | None:
        rel = self.readme_file
        if rel is None:
            return None
        text = self.read_text(rel)
        return parse_readme(text) if text is not None else None

    # ---- logs -----------------------------------------------------------------------------
    @cached_property
    def log_candidates(self) -> list[str]:
        return runs_mod.log_candidates(self.folder)

    @cached_property
    def logs(self) -> list[LogFile]:
        return runs_mod.read_logs(self.folder, self.log_candidates,
                                  lambda rel, message: self.problems.append(LoadProblem(rel, message)))

    @cached_property
    def training_logs(self) -> list[LogFile]:
        return runs_mod.training_logs(self.logs)

    @cached_property
    def runs(self) -> list[Run]:
        """Every run of every training log, with copies and superseded runs marked."""
        return runs_mod.runs_of(self.training_logs)

    @cached_property
    def evidence_runs(self) -> list[Run]:
        """The runs that count as evidence: the last run of each distinct log file."""
        return runs_mod.evidence_runs(self.runs)

    @cached_property
    def scored_runs(self) -> list[Run]:
        """Evidence runs that reached a final (headline) metric line."""
        return [r for r in self.evidence_runs if r.headline is not None]

    def run_mean_bpb(self, runs: list[Run] | None = None) -> float | None:
        return runs_mod.mean_bpb(runs if runs is not None else self.scored_runs)

    # ---- code -------------------------------------------------------------------------------
    @cached_property
    def entry_script(self) -> str | None:
        """train_gpt.py, or the only train*.py at the folder root when train_gpt.py is absent."""
        if ENTRY_SCRIPT in self.folder.files:
            return ENTRY_SCRIPT
        alternatives = [p for p in self.folder.files if "/" not in p and ALT_ENTRY_RE.match(p)]
        return alternatives[0] if len(alternatives) == 1 else None

    @cached_property
    def code(self) -> UnwrappedCode | None:
        """The unwrapped entry script; None with ``code_error`` set when it cannot be had."""
        rel = self.entry_script
        if rel is None:
            self.code_error = "no train_gpt.py (or single train*.py) in the folder"
            return None
        text = self.read_text(rel)
        if text is None:
            self.code_error = f"{rel} could not be read"
            return None
        if not text.strip():
            self.code_error = f"{rel} is empty"
            return None
        try:
            return unwrap(rel, text, self._read_sibling)
        except UnwrapError as exc:
            self.code_error = f"{rel}: could not unwrap: {exc}"
            return None

    def _read_sibling(self, rel: str) -> str | None:
        rel = rel.lstrip("./") if rel.startswith("./") else rel
        if rel not in self.folder.files:
            return None
        return self.read_text(rel)

    @cached_property
    def code_module(self) -> cst.Module | None:
        """The libcst module of the unwrapped entry code, parsed exactly once."""
        code = self.code
        if code is None:
            return None
        if code.module is not None:
            return code.module
        try:
            return parse_module(code.source)
        except SourceParseError as exc:
            self.code_parse_error = f"{code.origin} (unwrapped) is not parseable: {exc}"
            return None

    @cached_property
    def code_positions(self) -> LineTable | None:
        module = self.code_module
        return LineTable(module, self.code.source) if module is not None else None

    def code_location(self, start_line: int | None, end_line: int | None = None) -> Location:
        """A location in the unwrapped entry code, naming the wrapper when there is one."""
        code = self.code
        path = code.origin if code else (self.entry_script or ENTRY_SCRIPT)
        wrapper = code.wrapper_name() if code and code.wrapped else None
        return Location(path, start_line, end_line or start_line, wrapper=wrapper)

    @cached_property
    def code_accounting(self) -> CodeAccounting | None:
        code = self.code
        if code is None:
            return None
        sizes = {rel: entry.size for rel, entry in self.folder.files.items()}
        return account_code(code, sizes, self._read_sibling, parse=self.parse_source)

    def parse_source(self, path: str, source: str) -> cst.Module:
        """The libcst module of a folder file's (unwrapped) source, parsed at most once per
        audit: the entry is the context's own parse, and a helper module parsed for the code
        accounting is the same object the rule engine analyses."""
        code = self.code
        if code is not None and path == code.origin and source == code.source and self.code_module is not None:
            return self.code_module
        key = (path, source)
        module = self._parsed.get(key)
        if module is None:
            module = self._parsed[key] = parse_module(source)
        return module

    # ---- reporting helpers ------------------------------------------------------------
    @cached_property
    def _lines_cache(self) -> dict[str, list[str]]:
        return {}

    def line_text(self, rel: str, line: int | None) -> str | None:
        """The text of one line of a folder file (1-based), for evidence excerpts."""
        if line is None or line < 1:
            return None
        lines = self._lines_cache.get(rel)
        if lines is None:
            try:
                lines = self.folder.read_text(rel)[0].splitlines()
            except FolderError:
                lines = []
            self._lines_cache[rel] = lines
        return lines[line - 1].rstrip() if line <= len(lines) else None

    def problems_for(self, rel: str) -> list[str]:
        return [p.message for p in self.problems if p.path == rel]

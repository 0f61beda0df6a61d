"""The training runs of a record folder, as the checks and the significance test see them.

A log may hold several runs (the last one counts; earlier ones are superseded) and a folder
may hold byte-identical copies of one log (counted once). The evidence runs are the last run
of each distinct training log; the scored runs are those that reached a final metric line. The
audited folder's context and the reading of a reference record both select runs here, so a
reference is read exactly as the candidate is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from .folder import FolderError, RecordFolder
from .model import Location
from .parsers.logs import LogFile, MetricLine, RunRecord, is_log_candidate, looks_like_training_log, parse_log


@dataclass
class Run:
    """One training run as the checks see it: the log it came from and its parsed record."""

    log: LogFile
    record: RunRecord
    superseded: bool = False      # an earlier run in a log that holds several runs
    duplicate_of: str | None = None  # byte-identical copy of another log file

    @property
    def path(self) -> str:
        return self.log.path

    @property
    def seed(self) -> int | None:
        return self.record.seed

    @property
    def headline(self) -> MetricLine | None:
        return self.record.headline

    def at(self, line: int | None) -> Location:
        return Location(self.log.path, line, line)

    @property
    def label(self) -> str:
        suffix = f" (run {self.record.index + 1} of {len(self.log.runs)})" if len(self.log.runs) > 1 else ""
        return f"{self.log.path}{suffix}"


def log_candidates(folder: RecordFolder) -> list[str]:
    return sorted(p for p in folder.files if is_log_candidate(p))


def read_logs(folder: RecordFolder, rels: list[str],
              on_problem: Callable[[str, str], None] = lambda rel, message: None) -> list[LogFile]:
    """The parsed logs; a file that cannot be read is reported to ``on_problem`` and left out."""
    logs = []
    for rel in rels:
        try:
            data = folder.read_bytes(rel)
        except FolderError as exc:
            on_problem(rel, str(exc))
            continue
        logs.append(parse_log(data, rel))
    return logs


def training_logs(logs: list[LogFile]) -> list[LogFile]:
    return [log for log in logs if looks_like_training_log(log)]


def runs_of(logs: list[LogFile]) -> list[Run]:
    """Every run of every training log, with copies and superseded runs marked."""
    runs: list[Run] = []
    first_by_hash: dict[str, str] = {}
    for log in logs:
        duplicate_of = first_by_hash.get(log.sha256)
        if duplicate_of is None:
            first_by_hash[log.sha256] = log.path
        for i, record in enumerate(log.runs):
            runs.append(Run(log, record, superseded=i < len(log.runs) - 1, duplicate_of=duplicate_of))
    return runs


def evidence_runs(runs: list[Run]) -> list[Run]:
    """The runs that count as evidence: the last run of each distinct log file."""
    return [r for r in runs if not r.superseded and r.duplicate_of is None]


def scored_runs(runs: list[Run]) -> list[Run]:
    """Evidence runs that reached a final (headline) metric line."""
    return [r for r in evidence_runs(runs) if r.headline is not None]


def mean_bpb(runs: list[Run]) -> float | None:
    values = [r.headline.val_bpb for r in runs if r.headline]
    return statistics.fmean(values) if values else None

"""Running the audit: select rules, run them against each folder, assemble the results.

This is the programmatic entry point (the CLI is a thin layer over it):

    report = audit_paths([Path("records/track_10min_16mb")], AuditOptions())
    print(render(report, "markdown"))
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
import traceback
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Iterator

from . import __version__, registry
from .context import AuditContext, AuditOptions
from .engine.loader import CodeTarget, paused_gc
from .folder import FolderError, RecordFolder, discover_record_folders, track_from_path
from .model import AuditReport, CheckOutcome, Finding, FolderResult
from .rulebase import AstRule, MetaRule, PrRule, Rule
from .runner import run, skipped, unfinished
from .summary import fill_tables


def tool_info() -> dict[str, Any]:
    """Who wrote the report: name, version, the digest of the rule table and the table itself
    (each rule's metadata and docs), so renderers need nothing but the document."""
    return {"name": "pgolf-audit", "version": __version__, "rules_digest": registry.rules_digest(),
            "rules": [cls.describe() for cls in registry.all_rules()]}


def selected_rules(options: AuditOptions) -> list[tuple[type[Rule], bool, str]]:
    """Every registered rule with whether it runs and, if not, why."""
    out = []
    for cls in registry.all_rules():
        ok, reason = registry.is_selected(cls, options.select, options.ignore, options.preview)
        out.append((cls, ok, reason))
    return out


def run_ast_rules(ctx: AuditContext, rules: list[type[AstRule]]) -> Iterator[tuple[list[Finding], CheckOutcome]]:
    """The AST rules on the folder's code: one parse and one walk for all of them (their
    visitors run in it), then each rule through the runner on the shared code model."""
    if not rules:
        return
    instances = [cls() for cls in rules]
    with paused_gc():
        target = CodeTarget.build(ctx, instances)
        for rule in instances:
            yield run(rule, target, shared_ms=target.shared_ms)


def audit_folder(path: Path, options: AuditOptions, display_path: str | None = None) -> FolderResult:
    folder = RecordFolder.open(path)
    ctx = AuditContext(folder, options, display_path or str(path))
    result = FolderResult(
        path=display_path or str(path), name=folder.name, track=ctx.track, track_source=ctx.track_source,
        ruleset=ctx.ruleset.id,
    )
    ast_rules: list[type[AstRule]] = []
    for cls, selected, reason in selected_rules(options):
        if issubclass(cls, (MetaRule, PrRule)):  # PR-shape rules run in `pgolf-audit pr`, on the diff
            continue
        if not selected:
            result.checks.append(skipped(cls, reason))
            continue
        if not cls.applies_to(ctx.limits_track):
            result.checks.append(skipped(cls, f"does not apply to {ctx.limits_track}"))
            continue
        if issubclass(cls, AstRule):
            ast_rules.append(cls)
            continue
        findings, outcome = run(cls, ctx)
        result.findings.extend(findings)
        result.checks.append(outcome)
    for findings, outcome in run_ast_rules(ctx, ast_rules):
        result.findings.extend(findings)
        result.checks.append(outcome)
    result.checks.sort(key=lambda c: c.code)
    fill_tables(ctx, result)
    result.rerun = ctx.rerun
    result.finalise()
    return result


def _unauditable_result(path: str, display: str, reason: str) -> FolderResult:
    """The result of a folder whose audit stopped (the process crashed, hung or raised): one
    meta finding that says why, so the verdict is INCOMPLETE, never PASS (fail closed)."""
    try:
        track = track_from_path(Path(path))
    except (OSError, RuntimeError):  # a symlink loop in the path
        track = None
    result = FolderResult(path=display, name=Path(path).name, track=track,
                          track_source="path" if track else "not determined", ruleset="not determined")
    finding, outcome = unfinished(reason)
    result.findings.append(finding)
    result.checks.append(outcome)
    result.finalise()
    return result


def _audit_one(args: tuple[str, AuditOptions, str]) -> tuple[str, FolderResult | None, str | None]:
    path, options, display = args
    try:
        return path, audit_folder(Path(path), options, display), None
    except FolderError as exc:
        return path, None, str(exc)
    except RecursionError:
        return path, _unauditable_result(path, display, "nesting too deep to analyse"), None
    except Exception as exc:  # an unexpected error in one folder must not lose the others' reports
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return path, _unauditable_result(path, display, f"{type(exc).__name__}: {exc}{where}"), None


# A folder's audit runs in its own process when isolated, so that a crash of the native
# parser (libcst segfaults on some deeply nested input) or a hang ends that folder's audit
# only. Real folders take seconds; the limit is far above that.
FOLDER_TIME_LIMIT_S = 300.0
_CHILD_STACK_BYTES = 64 << 20


# A worker audits folders one after the other (forking once per folder cost more than many
# audits); it is replaced after this many, so that no state grows without bound.
_FOLDERS_PER_WORKER = 25


def _limit_child_resources() -> None:
    try:
        import resource  # POSIX only: elsewhere the child runs with the default limits

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard >= _CHILD_STACK_BYTES):
            resource.setrlimit(resource.RLIMIT_STACK, (max(soft, _CHILD_STACK_BYTES), hard))
    except (ImportError, ValueError, OSError):
        pass


def _worker(conn) -> None:
    """Audit the folders the parent sends, one at a time, answering each with its outcome;
    stop on ``None``, at the end of the pipe or after ``_FOLDERS_PER_WORKER`` folders."""
    _limit_child_resources()
    for _ in range(_FOLDERS_PER_WORKER):
        try:
            args = conn.recv()
        except (EOFError, OSError):
            break
        if args is None:
            break
        outcome = _audit_one(args)
        try:
            conn.send(outcome)
        except Exception as exc:  # a result that cannot be sent (pickling) is still reported
            path, _, display = args
            conn.send((path, _unauditable_result(path, display, f"result could not be returned: {type(exc).__name__}"),
                       None))
    conn.close()


def _process_context():
    methods = multiprocessing.get_all_start_methods()
    # fork: the child starts with the rules and parsers already imported
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the analysing process was killed by {name}"
    return f"the analysing process exited with status {exitcode} without a report"


class _Worker:
    """A child process and the folder it is auditing now (``index`` None when idle)."""

    def __init__(self, context):
        self.conn, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.index: int | None = None
        self.args: tuple | None = None
        self.deadline = 0.0
        self.done = 0

    def give(self, index: int, args: tuple, time_limit_s: float) -> bool:
        try:
            self.conn.send(args)
        except (OSError, ValueError):
            return False  # the worker is gone: the caller starts another
        self.index, self.args, self.deadline = index, args, time.monotonic() + time_limit_s
        return True

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _audit_isolated(work: list[tuple[str, AuditOptions, str]], jobs: int,
                    time_limit_s: float) -> list[tuple[str, FolderResult | None, str | None]]:
    """Audit each folder in a child process, ``jobs`` children at a time; a child that crashes,
    exits without a result or runs past ``time_limit_s`` on a folder gives that folder an
    INCOMPLETE result and is replaced, so every other folder is still audited."""
    registry.all_rules()  # imported once here, inherited by every forked child
    # objects that exist now are shared with every child: kept out of the collector, they are
    # not written to (and so not copied page by page) when a child collects
    gc.freeze()

    context = _process_context()
    outcomes: dict[int, tuple[str, FolderResult | None, str | None]] = {}
    pending = list(enumerate(work))
    pending.reverse()
    workers: list[_Worker] = []
    try:
        while pending or any(w.index is not None for w in workers):
            for w in [w for w in workers if w.index is None]:
                if not pending:
                    break
                index, args = pending.pop()
                if not w.give(index, args, time_limit_s):
                    pending.append((index, args))
                    workers.remove(w)
                    w.stop(kill=True)
            while pending and len(workers) < jobs:
                w = _Worker(context)
                workers.append(w)
                index, args = pending.pop()
                if not w.give(index, args, time_limit_s):
                    # a worker that cannot take its first folder: that folder is not retried forever
                    workers.remove(w)
                    w.stop(kill=True)
                    outcomes[index] = (args[0], _unauditable_result(
                        args[0], args[2], "no analysing process could be started"), None)
            busy = [w for w in workers if w.index is not None]
            if not busy:
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout=timeout))
            for w in busy:
                if w.conn not in ready:
                    continue
                index, args = w.index, w.args
                try:
                    outcomes[index] = w.conn.recv()
                except (EOFError, OSError, Exception):
                    w.process.join(5)
                    outcomes[index] = (args[0], _unauditable_result(args[0], args[2], _describe_exit(w.process.exitcode)),
                                       None)
                    workers.remove(w)
                    w.stop(kill=True)
                    continue
                w.index = w.args = None
                w.done += 1
                if w.done >= _FOLDERS_PER_WORKER:
                    workers.remove(w)
                    w.stop()
            now = time.monotonic()
            for w in [w for w in workers if w.index is not None and w.deadline <= now]:
                index, args = w.index, w.args
                workers.remove(w)
                w.stop(kill=True)
                outcomes[index] = (args[0], _unauditable_result(
                    args[0], args[2], f"stopped after the {time_limit_s:.0f}-second limit for one folder"), None)
    finally:
        for w in workers:
            w.stop(kill=w.index is not None)
    return [outcomes[i] for i in range(len(work))]


def audit_folder_isolated(path: Path, options: AuditOptions, display_path: str | None = None,
                          time_limit_s: float = FOLDER_TIME_LIMIT_S) -> FolderResult:
    """``audit_folder`` in a child process (see ``_audit_isolated``); FolderError as it raises."""
    _, result, error = _audit_isolated([(str(path), options, display_path or str(path))], 1, time_limit_s)[0]
    if result is None:
        raise FolderError(error or "could not be audited")
    return result


def _expected_cost(path: Path) -> int:
    """Bytes of Python at the folder's top level: the biggest folders start first, so that
    one slow folder does not run alone at the end of a parallel run."""
    try:
        return sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(path)
                   if e.name.endswith(".py") and e.is_file(follow_symlinks=False))
    except OSError:
        return 0


def expand_paths(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[dict[str, str]]]:
    folders: list[tuple[Path, str]] = []
    errors: list[dict[str, str]] = []
    for p in paths:
        if not p.exists():
            errors.append({"path": str(p), "error": "no such file or directory"})
            continue
        if not p.is_dir():
            errors.append({"path": str(p), "error": "not a directory (give a record folder or a folder of record folders)"})
            continue
        found = discover_record_folders(p)
        if not found:
            errors.append({"path": str(p), "error": "no record folder found (no README.md, submission*.json, train*.py or log files)"})
        for f in found:
            display = str(p) if f == p else str(p / f.relative_to(p))
            folders.append((f, display))
    return folders, errors


def audit_paths(paths: list[Path], options: AuditOptions, *, isolated: bool | None = None,
                time_limit_s: float = FOLDER_TIME_LIMIT_S) -> AuditReport:
    """Audit every record folder under ``paths``. ``isolated`` (default: when more than one
    job runs) audits each folder in its own process with ``time_limit_s``, so a parser crash
    or hang becomes that folder's INCOMPLETE result and every folder is still reported."""
    folders, errors = expand_paths(paths)
    jobs = max(1, min(options.jobs or os.cpu_count() or 1, len(folders)))
    work = [(str(f), options, display) for f, display in folders]
    if isolated is None:
        isolated = jobs > 1
    if isolated and work:
        order = sorted(range(len(work)), key=lambda i: -_expected_cost(Path(work[i][0])))
        done = _audit_isolated([work[i] for i in order], jobs, time_limit_s)
        outcomes: list = [None] * len(work)
        for position, index in enumerate(order):
            outcomes[index] = done[position]
    else:
        outcomes = [_audit_one(w) for w in work]
    results = []
    for path, result, error in outcomes:
        if result is None:
            errors.append({"path": path, "error": error or "could not be audited"})
        else:
            results.append(result)
    return AuditReport(tool=tool_info(), results=results, errors=errors)


__all__ = ["AuditOptions", "audit_folder", "audit_folder_isolated", "audit_paths", "tool_info"]

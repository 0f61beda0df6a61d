"""The AST rule engine: one model of the code, one traversal, every AST rule.

``run_ast_rules(ctx, rules)`` is what the audit runner calls. It takes the libcst module the
context parsed once (``ctx.code_module``) and the local modules the entry script imports
(each parsed once), turns each into a compact model in a single walk (``ir``; rules' own
``visit_<Node>`` methods run during that walk), builds the program model (``program``: name
resolution, call graph, reachability), and hands it to every rule. Rules that need ordering
facts ask for ``program.analysis`` (``dataflow``: the effect simulation with per-function
summaries), computed once and shared; n-gram rules use ``tokens`` (the scored token and the
tables read with it). Each finding's code path is then checked against the feature flags the
logged runs used (``gating``), and its lines come from ``lines`` (no metadata provider).

The submitted code is never executed, imported, evaluated or compiled.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..cstutil import SourceParseError
from ..model import CheckOutcome, CheckStatus, Finding, Location, Severity
from . import ir
from .flags import RunValues
from .gating import Gate, GateEvaluator
from ..lines import LineTable
from .printed import PrintedEvidence, RunOutput
from .program import Program, Site
from ..rulebase import Ruling

if TYPE_CHECKING:
    from ..context import AuditContext
    from ..rulebase import AstRule

__all__ = ["run_ast_rules", "build_program", "Hit", "Site", "CodeProgram"]


@dataclass
class Hit:
    """What a rule reports: a site in the code, a message, and what else to show."""

    site: Site
    message: str
    severity: Severity | None = None
    related: list[Site] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    # expressions that scale the flagged code: a zero value in a run disables it there
    weights: list[tuple[ir.X, ir.FunctionIR]] = field(default_factory=list)
    # further sites whose guards also decide whether the path runs (the score of a pair)
    also_guarded_by: list[Site] = field(default_factory=list)
    # leave the severity alone whatever the flags say (meta findings)
    ungated: bool = False
    # the ruling this hit enforces when it is not the rule's own (``AstRule.RULING``)
    ruling: Ruling | None = None


class CodeProgram(Program):
    """The program model plus what the rules share: the analysis and the logged runs."""

    def __init__(self, files: list[ir.FileIR], folder_files: frozenset[str] = frozenset(),
                 runs: list[RunValues] | None = None, problems: list[str] | None = None,
                 outputs: list[RunOutput] | None = None):
        super().__init__(files, folder_files)
        self.runs = runs or []
        self.problems = problems or []
        self.outputs = outputs or []

    @cached_property
    def printed(self) -> PrintedEvidence:
        return PrintedEvidence(self, self.outputs)

    @cached_property
    def analysis(self):
        from .dataflow import Analysis

        return Analysis(self)

    def not_recognised(self) -> list[str]:
        """What the legality rules need and the analysis did not find at all: a pass that
        scores validation data. Without it nothing was checked, which is no pass."""
        analysis = self.__dict__.get("analysis")
        if analysis is None:
            return []
        for func, events in analysis.events.items():
            for ev in events:
                if ev.kind == "score" and any(analysis.is_val(o, func) for o in ev.origins):
                    return []
        return ["not recognised: no pass that scores validation tokens was found in the code, so the "
                "order of scoring and adaptation could not be checked"]

    def analysis_failures(self) -> list[str]:
        """Functions the effect simulation could not model (when it was needed at all)."""
        analysis = self.__dict__.get("analysis")
        if analysis is None:
            return []
        return [f"the analysis of `{f.qualname}` in {f.file.path} failed ({why})" for f, why in analysis.failures.items()]

    @cached_property
    def gates(self) -> GateEvaluator:
        call_args: dict = {}
        for rec in self.analysis.call_records.values():
            binding = {p: x for p, (x, _o) in rec.args.items() if x is not None}
            call_args.setdefault(rec.callee, []).append((binding, rec.caller))
        return GateEvaluator(self, call_args, self.runs)


def _runs(ctx: "AuditContext") -> list[RunValues]:
    out = []
    try:
        runs = ctx.evidence_runs
    except Exception:  # logs that cannot be read leave the defaults (PG901 reports them)
        return out
    for run in runs:
        values = RunValues.from_run(run)
        if values.values:
            out.append(values)
    return out


def build_program(ctx: "AuditContext", hooks: dict | None = None) -> CodeProgram:
    """The program model of the folder's code: the entry (already parsed by the context)
    and every local Python module it imports (parsed once each)."""
    code = ctx.code
    module = ctx.code_module
    # the context's line table: computed only if a finding asks, shared with every other check
    entry = ir.build_file(code.origin, module, ctx.code_positions,
                          wrapper=code.wrapper_name() if code.wrapped else None, is_entry=True, hooks=hooks)
    entry.source = code.source  # type: ignore[attr-defined]
    files = [entry]
    problems: list[str] = []
    folder_files = frozenset(getattr(ctx.folder, "files", {}) or {})
    # local modules the code imports, followed transitively (found from the model's own
    # import table, so no second parse of the entry script is needed)
    pending = _local_imports(entry, folder_files) + _run_by_other_means(ctx)
    seen = {code.entry, code.origin}
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = ctx.read_text(path)
        if text is None:
            problems.append(f"{path}: unreadable")
            continue
        try:
            from ..unwrap import UnwrapError, unwrap

            try:
                text = unwrap(path, text, ctx._read_sibling).source
            except UnwrapError as exc:
                problems.append(f"{path}: could not unwrap: {exc}")
                continue
            helper_module = ctx.parse_source(path, text)  # shared with the code accounting
        except SourceParseError as exc:
            problems.append(f"{path}: not parseable: {exc}")
            continue
        helper = ir.build_file(path, helper_module, LineTable(helper_module, text), is_entry=False, hooks=hooks)
        helper.source = text  # type: ignore[attr-defined]
        files.append(helper)
        pending.extend(_local_imports(helper, folder_files))
    return CodeProgram(files, folder_files, _runs(ctx), problems, _outputs(ctx))


def _outputs(ctx: "AuditContext") -> list[RunOutput]:
    """Each evidence run's printed lines, without the source dump many logs start with."""
    out: list[RunOutput] = []
    try:
        runs = ctx.evidence_runs
    except Exception:  # unreadable logs are PG901's to report
        return out
    for run in runs:
        text = ctx.read_text(run.path)
        if text is None:
            continue
        dumps = run.log.source_dumps
        first, last = run.record.first_line, run.record.last_line
        lines = []
        for number, line in enumerate(text.splitlines()[first - 1:last], start=first):
            if any(a <= number <= b for a, b in dumps):
                continue
            lines.append((number, line))
        out.append(RunOutput(run.path, lines))
    return out


def _run_by_other_means(ctx: "AuditContext") -> list[str]:
    """Python files the code accounting finds the script runs (``importlib``, ``runpy``,
    ``exec(open(...).read())``, wrapper layers): the same decision of "which code runs" as the
    byte count, so no counted helper goes unanalysed."""
    try:
        accounting = ctx.code_accounting
    except Exception:  # the accounting reports its own failures (PG202)
        return []
    if accounting is None:
        return []
    return [f.path for f in accounting.files[1:] if f.path.lower().endswith(".py")]


def _local_imports(f: ir.FileIR, folder_files: frozenset[str]) -> list[str]:
    """Folder files that ``import x`` / ``from x import y`` / ``from . import y`` in ``f`` name."""
    base = f.path.rsplit("/", 1)[0] if "/" in f.path else ""
    out: list[str] = []
    for module, _stmt in f.imports:
        level = len(module) - len(module.lstrip("."))
        name = module.lstrip(".")
        roots = [base] if level else ["", base]
        for _ in range(max(level - 1, 0)):
            roots = [r.rsplit("/", 1)[0] if "/" in r else "" for r in roots]
        parts = name.split(".") if name else []
        for root in dict.fromkeys(roots):
            for k in range(len(parts), 0, -1):
                stem = "/".join(([root] if root else []) + parts[:k])
                for candidate in (stem + ".py", stem + "/__init__.py"):
                    if candidate in folder_files and candidate not in out:
                        out.append(candidate)
    return out


def _hooks(instances: list["AstRule"]) -> dict[str, list]:
    hooks: dict[str, list] = {}
    for rule in instances:
        for attr in dir(type(rule)):
            if attr.startswith("visit_"):
                hooks.setdefault(attr[len("visit_"):], []).append(getattr(rule, attr))
    return hooks


def run_ast_rules(ctx: "AuditContext", rules: Iterable[type["AstRule"]]) -> Iterator[tuple[list[Finding], CheckOutcome]]:
    from ..audit import _crash_finding

    rules = list(rules)
    start = time.perf_counter()
    if ctx.code is None or ctx.code_module is None:
        reason = ctx.code_error or ctx.code_parse_error or "the training script could not be read"
        for cls in rules:
            yield [], CheckOutcome(cls.CODE, cls.NAME, CheckStatus.INCOMPLETE,
                                   f"code not analysable (see PG903): {reason}")
        return
    instances = [cls() for cls in rules]
    # The walk allocates many small objects over a large libcst tree; the cyclic garbage
    # collector would traverse that tree again and again for nothing.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            program = build_program(ctx, _hooks(instances))
        except Exception as exc:
            for cls in rules:
                yield [_crash_finding(cls, exc)], CheckOutcome(cls.CODE, cls.NAME, CheckStatus.ERROR,
                                                               f"crashed building the code model: {type(exc).__name__}: {exc}")
            return
        shared_ms = (time.perf_counter() - start) * 1000
        for rule in instances:
            cls = type(rule)
            t0 = time.perf_counter()
            try:
                findings = [to_finding(rule, hit, program, ctx) for hit in rule.check(program)]
                findings = _dedupe(findings)
                live = [f for f in findings if f.severity is not Severity.INFO]
                status = CheckStatus.FAIL if live else CheckStatus.PASS
                reason = ""
                gaps = program.problems + program.analysis_failures()
                if cls.NEEDS_SCORING_PASS:
                    gaps = gaps + program.not_recognised()
                if status is CheckStatus.PASS and gaps:
                    # code that runs but was not analysed: never a pass (fail closed)
                    status, reason = CheckStatus.INCOMPLETE, "; ".join(gaps)
                outcome = CheckOutcome(cls.CODE, cls.NAME, status, reason,
                                       (time.perf_counter() - t0) * 1000 + shared_ms / max(len(instances), 1),
                                       len(findings))
            except Exception as exc:  # a crashing rule never crashes the audit (fail closed)
                findings = [_crash_finding(cls, exc)]
                outcome = CheckOutcome(cls.CODE, cls.NAME, CheckStatus.ERROR, f"crashed: {type(exc).__name__}: {exc}",
                                       (time.perf_counter() - t0) * 1000, 1)
            yield findings, outcome
    finally:
        if gc_was_enabled:
            gc.enable()


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per place: the same line reached along several paths (a branch that the
    logs disable and one they enable) keeps its most severe reading."""
    best: dict[str, Finding] = {}
    order: list[str] = []
    for f in findings:
        key = f.location.display() if f.location else f.message
        mine = best.get(key)
        if mine is None:
            best[key] = f
            order.append(key)
        elif f.severity.rank > mine.severity.rank:
            best[key] = f
    return [best[k] for k in order]


# --------------------------------------------------------------------------- findings


def site_location(site: Site, ctx: "AuditContext | None") -> Location:
    start, end = site.span()
    if site.file.is_entry and ctx is not None:
        return ctx.code_location(start, end)
    return Location(site.file.path, start, end, wrapper=site.file.wrapper)


def site_excerpt(site: Site) -> str | None:
    line = site.line()
    source = getattr(site.file, "source", None)
    if line is None or source is None:
        return None
    lines = getattr(site.file, "_lines", None)
    if lines is None:
        lines = source.splitlines()
        site.file._lines = lines  # type: ignore[attr-defined]
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def to_finding(rule: "AstRule", hit: Hit, program: CodeProgram, ctx: "AuditContext | None") -> Finding:
    severity = hit.severity or rule.SEVERITY
    message = hit.message
    related: list[Location] = [site_location(s, ctx) for s in hit.related]
    values = dict(hit.values)
    if not hit.ungated:
        # guards in the flagged function apply together; a site in another function (inside
        # a callee) is behind that function's own guards, decided on their own
        here = [s for s in hit.also_guarded_by if s.func is hit.site.func]
        elsewhere = [s for s in hit.also_guarded_by if s.func is not hit.site.func and s.stmt is not None]
        gate = program.gates.gate(hit.site.func, hit.site.stmt, hit.weights,
                                  extra_guards=tuple(g for s in here for g in (s.stmt.guards if s.stmt else ())))
        severity, note, logs = decide(severity, gate, program, [hit.site])
        for other in elsewhere:
            if not other.stmt.guards or severity is Severity.INFO:
                continue
            inner_gate = program.gates.gate(other.func, other.stmt, [], own_guards_only=True)
            if not inner_gate.involves_flags:
                continue  # data conditions inside the callee (`if raw_end > n: break`)
            lowered, other_note, other_logs = decide(severity, inner_gate, program, [other])
            # only a flag that switches the inner statement off lowers the finding
            if lowered.rank < severity.rank and not other_note.startswith("could not tell"):
                severity, logs = lowered, other_logs
                note = f"{other_note} (in `{other.func.qualname}`)"
        if note:
            message = f"{message} [{note}]"
        related.extend(logs)
        if gate.involves_flags:
            values["flags"] = [u.describe() for u in _flag_uses(gate)]
        ruling = hit.ruling or rule.RULING
        severity, ruling_note = apply_ruling(severity, ruling, ctx.date if ctx is not None else None)
        if ruling_note:
            message = f"{message} [{ruling_note}]"
        values["ruling"] = ruling.describe()
    return rule.finding(message, location=site_location(hit.site, ctx), excerpt=site_excerpt(hit.site),
                        values=values, related=related, severity=severity)


def _flag_uses(gate: Gate):
    seen = set()
    for u in gate.flag_uses:
        key = (u.key, u.source, u.log, u.line, repr(u.value))
        if key not in seen:
            seen.add(key)
            yield u


def decide(severity: Severity, gate: Gate, program: CodeProgram, sites: list[Site] | None = None
           ) -> tuple[Severity, str, list[Location]]:
    """The finding's severity given where its code path ran: the logged flag values first;
    where they do not show it enabled, lines that only its path prints in the logs. Every
    site of the finding (the flagged statement and the related ones, such as an update in
    a callee behind its own flag) must show it ran."""
    severity_, note, logs = _decide_by_flags(severity, gate, program)
    if severity_ is severity and not note.startswith("could not tell"):
        return severity_, note, logs
    if note.startswith("enabled") or not sites:
        return severity_, note, logs
    printed = [p for s in sites[:1] for p in program.printed.ran(s, _own_guards_clear(program, s))]
    if not printed or not all(program.printed.ran(s, _own_guards_clear(program, s)) for s in sites[1:]):
        return severity_, note, logs
    shown = "; ".join(p.describe() for p in printed[:3])
    return severity, f"it ran: {shown}", [Location(p.log, p.line, p.line) for p in printed]


def _own_guards_clear(program: CodeProgram, site: Site) -> bool:
    """No flag of the site's own function keeps it off: only whether the function ran is open."""
    own = program.gates.gate(site.func, site.stmt, [], own_guards_only=True)
    return not own.involves_flags or all(o.enabled is True for o in own.outcomes)


def _decide_by_flags(severity: Severity, gate: Gate, program: CodeProgram) -> tuple[Severity, str, list[Location]]:
    if gate.unreachable:
        # dead code does not run, but a name can still be called dynamically: a reviewer confirms
        lowered = Severity.WARNING if severity is Severity.ERROR else severity
        return lowered, "in a function nothing in the script calls: confirm it is dead code", []
    outcomes = gate.outcomes
    if not gate.involves_flags:
        if outcomes and all(o.enabled is False for o in outcomes):
            return Severity.INFO, "behind a condition that is never true", []
        return severity, "", []
    logs: list[Location] = []
    enabled = [o for o in outcomes if o.enabled is True]
    if enabled:
        logged = [o for o in enabled if any(u.source == "log" for u in o.uses)]
        if logged:
            parts = [", ".join(u.describe() for u in o.uses) for o in logged]
            logs = _log_locations(logged)
            return severity, "enabled in " + "; ".join(dict.fromkeys(parts)), logs
        uses = ", ".join(dict.fromkeys(u.describe() for o in enabled for u in o.uses))
        return severity, f"enabled by default: {uses}; no log prints these values", []
    undecided = [o for o in outcomes if o.enabled is None]
    if undecided:
        texts = ", ".join(dict.fromkeys(t for o in undecided for t in o.undecided)) or "its guard"
        # the code may never run: a reviewer confirms, the audit does not fail it
        lowered = Severity.WARNING if severity is Severity.ERROR else severity
        return lowered, f"could not tell whether it runs: `{texts}` is not decidable statically", []
    # disabled everywhere: by the logs, or only by code defaults nobody printed
    by_logs = bool(program.runs) and all(_disabled_by_logs(program, gate, o) for o in outcomes)
    uses = ", ".join(dict.fromkeys(u.describe() for o in outcomes for u in o.uses))
    if by_logs:
        logs = _log_locations(outcomes)
        return Severity.INFO, f"disabled in every logged run: {uses}", logs
    if severity is Severity.INFO:
        return severity, f"disabled by default: {uses}", []
    return Severity.WARNING, (f"disabled only by the code default ({uses}); no log shows the value the runs used, "
                              f"so it cannot be confirmed off"), []


def apply_ruling(severity: Severity, ruling: Ruling, code_date: str | None) -> tuple[Severity, str]:
    """The severity under the ruling's date and standing: code dated before a ruling that
    restricted an accepted practice gets info; a disputed ruling gives at most a warning."""
    if severity is Severity.INFO:
        return severity, ""
    if code_date and code_date[:10] < ruling.date:
        return Severity.INFO, (f"the submission is dated {code_date[:10]}, before the ruling it would break "
                               f"({ruling.id}, {ruling.source}, {ruling.date})")
    if ruling.disputed and severity is Severity.ERROR:
        return Severity.WARNING, f"{ruling.id} is disputed ({ruling.source}): a maintainer decides"
    return severity, ""


def _disabled_by_logs(program: CodeProgram, gate: Gate, outcome) -> bool:
    """Disabled even when every value the log does not print is taken as unknown."""
    return outcome.enabled_by_logs_alone is False


def _log_locations(outcomes) -> list[Location]:
    out: list[Location] = []
    seen = set()
    for o in outcomes:
        for u in o.uses:
            if u.source == "log" and u.log and (u.log, u.line) not in seen:
                seen.add((u.log, u.line))
                out.append(Location(u.log, u.line, u.line))
    return out

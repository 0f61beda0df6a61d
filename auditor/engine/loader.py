"""The loader: the program model of a folder's code, built once for every AST rule.

``CodeTarget.build(ctx, rules)`` takes the libcst module the context parsed once
(``ctx.code_module``) and the local modules the entry script imports (each parsed once),
turns each into a compact model in a single walk (``ir``; rules' own ``visit_<Node>`` methods
run during that walk) and builds the program model (``CodeProgram``: name resolution, call
graph, reachability, plus what the rules share: the effect simulation ``analysis``, the
feature flags of the logged runs and their printed lines). The runner then runs each rule on
the target; ``CodeTarget.findings`` turns the rule's hits into findings (``severity``).

The submitted code is never executed, imported, evaluated or compiled.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

from ..cstutil import SourceParseError
from ..lines import LineTable
from ..model import Finding
from ..rulebase import IncompleteCheck, InputCrashed
from ..unwrap import UnwrapError, unwrap
from . import ir
from .dataflow import Analysis
from .flags import RunValues
from .gating import GateEvaluator
from .printed import PrintedEvidence, RunOutput
from .program import Program
from .severity import one_per_place, to_finding

if TYPE_CHECKING:
    from ..context import AuditContext
    from ..rulebase import AstRule


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
    def analysis(self) -> Analysis:
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
            try:
                text = unwrap(path, text, ctx._read_sibling, parse=ctx.parse_source).source
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
    """Each evidence run's printed lines, without the source dump many logs start with and
    without the hyperparameter lines (a dump of the configuration, `ttt_lora_rank: 56`, says
    what the run was given, not which code path ran: the flag values decide that)."""
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
        configuration = set((getattr(run.record, "hyperparameter_lines", {}) or {}).values())
        lines = []
        for number, line in enumerate(text.splitlines()[first - 1:last], start=first):
            if number in configuration or any(a <= number <= b for a, b in dumps):
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


@contextmanager
def paused_gc() -> Iterator[None]:
    """The walk allocates many small objects over a large libcst tree; the cyclic garbage
    collector would traverse that tree again and again for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class CodeTarget:
    """What the AST rules run on: the folder's context and the program model built once for
    all of them. ``unavailable`` says why there is no code to analyse (PG903 reports it);
    ``failure`` is the exception that stopped the model from being built."""

    ctx: "AuditContext"
    program: CodeProgram | None = None
    unavailable: str | None = None
    failure: BaseException | None = None
    shared_ms: float = 0.0

    @classmethod
    def build(cls, ctx: "AuditContext", rules: list["AstRule"]) -> "CodeTarget":
        start = time.perf_counter()
        if ctx.code is None or ctx.code_module is None:
            reason = ctx.code_error or ctx.code_parse_error or "the training script could not be read"
            return cls(ctx, unavailable=reason)
        try:
            program = build_program(ctx, _hooks(rules))
        except Exception as exc:  # every rule then reports the crash (fail closed)
            return cls(ctx, failure=exc)
        return cls(ctx, program, shared_ms=(time.perf_counter() - start) * 1000 / max(len(rules), 1))

    def findings(self, rule: "AstRule") -> list[Finding]:
        if self.unavailable is not None:
            raise IncompleteCheck(f"code not analysable (see PG903): {self.unavailable}")
        if self.failure is not None or self.program is None:
            raise InputCrashed("building the code model", self.failure or RuntimeError("no code model"))
        return one_per_place([to_finding(rule, hit, self.program, self.ctx) for hit in rule.check(self.program)])

    def gaps(self, rule: "AstRule") -> list[str]:
        """Code that runs but was not analysed: a rule that found nothing has not passed."""
        program = self.program
        if program is None:
            return []
        gaps = program.problems + program.analysis_failures()
        if rule.NEEDS_SCORING_PASS:
            gaps = gaps + program.not_recognised()
        return gaps

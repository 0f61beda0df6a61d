"""Deciding whether a finding's code path ran in the logged runs.

A finding sits behind the guards of its statement (``if args.ngram_within_beta > 0:``, an
earlier ``if not args.ttt_enabled: return``), behind the call sites of its function (a
function only runs where it is called, a class's methods only where it is instantiated,
including ``SmearGate(d) if args.smear else None``), and sometimes behind a weight the rule
names (``within_beta * gate``: a zero weight disables the gate). Each logged run is
evaluated with the values its log prints, falling back to the code defaults; the outcome
says whether the path was enabled, disabled or undecidable in each run, and which flag
values (with their log lines) decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import ir
from .flags import UNKNOWN, Evaluator, FlagUse, RunValues, truthy
from .program import Program


@dataclass
class RunOutcome:
    run: RunValues | None
    enabled: bool | None          # None: could not be decided
    uses: list[FlagUse] = field(default_factory=list)
    enabled_by_logs_alone: bool | None = None  # the same with unprinted values unknown
    undecided: list[str] = field(default_factory=list)  # guard texts that could not be evaluated


@dataclass
class Gate:
    outcomes: list[RunOutcome]
    unreachable: bool = False

    @property
    def flag_uses(self) -> list[FlagUse]:
        return [u for o in self.outcomes for u in o.uses]

    @property
    def involves_flags(self) -> bool:
        return bool(self.flag_uses)


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


class GateEvaluator:
    def __init__(self, program: Program, call_args: dict, runs: list[RunValues]):
        self.program = program
        self.runs = runs
        # callee -> [(param -> argument expression, caller)]
        self.call_args = call_args

    def gate(self, func: ir.FunctionIR, stmt: ir.S | None, weights: list[tuple[ir.X, ir.FunctionIR]] = (),
             extra_guards: tuple = (), own_guards_only: bool = False) -> Gate:
        """Whether the statement ran in each logged run. ``own_guards_only`` leaves out the
        call sites of ``func`` (for a statement inside a callee whose call is gated already)."""
        unreachable = func not in self.program.reachable
        outcomes: list[RunOutcome] = []
        guards = (stmt.guards if stmt is not None else ()) + tuple(extra_guards)
        for run in (self.runs or [None]):
            ev = _ParamEvaluator(self, run)
            out = RunOutcome(run, True)
            out.enabled = self._evaluate(func, guards, weights, ev, out, own_guards_only)
            out.uses = _unique(ev.uses)
            if run is not None:
                scratch = RunOutcome(run, True)
                out.enabled_by_logs_alone = self._evaluate(func, guards, weights,
                                                           _ParamEvaluator(self, run, defaults_unknown=True), scratch,
                                                           own_guards_only)
            outcomes.append(out)
        return Gate(outcomes, unreachable)

    def _evaluate(self, func, guards, weights, ev, out, own_guards_only: bool = False) -> bool | None:
        value = self._guards(guards, func, ev, out)
        if not own_guards_only:
            value = _and(value, self._enabled(func, ev, out, 0, set()))
        for wx, wf in weights:
            w = ev.value(wx, wf)
            if w is UNKNOWN:
                continue
            try:
                if w == 0 or w is False or w is None:
                    value = _and(value, False)
            except Exception:
                pass
        return value

    def _guards(self, guards: tuple, func: ir.FunctionIR, ev: "Evaluator", out: RunOutcome) -> bool | None:
        result: bool | None = True
        for test, taken in guards:
            before = len(ev.uses)
            v = truthy(ev.value(test, func))
            if v is None:
                if len(ev.uses) == before:
                    # a data-dependent condition (`if rank == 0`, `if is_last_chunk`): not a flag
                    continue
                out.undecided.append(ir.render(test, limit=80))
                result = _and(result, None)
            else:
                result = _and(result, v == taken)
        return result

    def _enabled(self, func: ir.FunctionIR, ev: "Evaluator", out: RunOutcome, depth: int, seen: set) -> bool | None:
        if func.is_module or depth > 8:
            return True
        if func in seen:
            return False
        seen = seen | {func}
        sites = self.program.callers.get(func, [])
        if not sites:
            # run by the framework (forward via __call__), as a hook or callback, or never
            return True
        values = []
        for caller, call, stmt in sites:
            guards = (stmt.guards if stmt is not None else ()) + tuple(call.conds)
            g = self._guards(guards, caller, ev, out)
            if g is False:
                values.append(False)
                continue
            values.append(_and(g, self._enabled(caller, ev, out, depth + 1, seen)))
        return _or(values)


class _ParamEvaluator(Evaluator):
    """An evaluator that follows a function's parameters to the arguments its callers pass
    (``within_beta=args.ngram_within_beta``)."""

    def __init__(self, gates: GateEvaluator, run: RunValues | None, defaults_unknown: bool = False):
        super().__init__(gates.program.defs, run, defaults_unknown)
        self.gates = gates
        self._depth = 0

    def _name(self, name: str, func, depth: int) -> Any:
        value = super()._name(name, func, depth)
        if value is not UNKNOWN or func is None or name not in (p.lstrip("*") for p in func.params) or depth > 6:
            return value
        values = []
        for binding, caller in self.gates.call_args.get(func, ()):
            arg = binding.get(name)
            if arg is None:
                default = func.defaults.get(name)
                values.append(self.value(default, func, depth + 1) if default is not None else UNKNOWN)
            else:
                values.append(self.value(arg, caller, depth + 1))
        if not values:
            default = func.defaults.get(name)
            return self.value(default, func, depth + 1) if default is not None else UNKNOWN
        first = values[0]
        if any(v is UNKNOWN for v in values) or any(v != first for v in values[1:]):
            return UNKNOWN
        return first


def _unique(uses: list[FlagUse]) -> list[FlagUse]:
    seen = set()
    out = []
    for u in uses:
        key = (u.key, u.source, u.log, u.line, repr(u.value))
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out

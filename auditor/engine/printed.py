"""Evidence that a code path ran: lines it prints that the logs contain.

A feature flag the logs do not print leaves a guard undecided, or decided only by the code
default. The program's own output can settle it: when a statement behind the same guard, or
a function the flagged statement calls, prints a message whose literal text appears in a
run's output, that path ran in that run (``lora_ttt_batched: short=...`` in the log proves
``if ttt_on: lora_ttt_eval(...)`` was taken, whatever ``TTT_ENABLED`` defaulted to).

Only literal fragments that identify the path count: at least ``MIN_FRAGMENT`` characters,
printed nowhere else in the program, and matched against the run's output lines outside
the source-code dump (many scripts log their own source first) and the hyperparameter lines.
The matching line must read as the whole template line of that print, and no print off the
path may be able to produce it (`stride:{s} eval_time:` prints `stride:64 eval_time:` too).
A statement's path is its guards with the branch taken: what an if-branch prints says
nothing of its else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import ir
from .program import Program, Site

MIN_FRAGMENT = 12
MAX_CALL_DEPTH = 3
_PRINT_NAME_RE = re.compile(r"^(?:print|log\w*|\w*_log|info|warning|write)$")
_LETTER_RE = re.compile(r"[A-Za-z]{3}")


@dataclass
class RunOutput:
    """What one run printed: its log lines outside the source dump and the hyperparameter
    lines, with line numbers."""

    path: str
    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Printed:
    """A run printed a line that only the flagged path prints."""

    fragment: str
    log: str
    line: int

    def describe(self) -> str:
        return f"`{self.fragment.strip()}` printed at {self.log}:{self.line}"


def _template(call: ir.Call) -> str | None:
    """The literal text a print call emits, with ``{}`` where values go."""
    if not _PRINT_NAME_RE.match(ir.call_name(call)) or not call.args:
        return None
    first = call.args[0]
    if not isinstance(first, ir.Const) or not isinstance(first.value, str):
        return None
    return first.value


def _fragments(template: str) -> list[tuple[str, re.Pattern]]:
    """The identifying fragments of a template, each with a pattern for the whole output line
    it sits on (the template's line, values as any text)."""
    out = []
    for segment in template.split("\n"):
        line_re = _line_pattern(segment)
        for piece in segment.split("{}"):
            piece = piece.strip()
            if len(piece) >= MIN_FRAGMENT and _LETTER_RE.search(piece):
                out.append((piece, line_re))
    return out


def _line_pattern(segment: str) -> re.Pattern:
    return re.compile(".*?".join(re.escape(p.strip()) for p in segment.split("{}") if p.strip()))


def _distinctive(segment: str) -> bool:
    """Enough literal text that a line matching the template was likely printed by it."""
    return sum(len(p.strip()) for p in segment.split("{}")) >= MIN_FRAGMENT and bool(_LETTER_RE.search(segment))


class PrintedEvidence:
    """Per program: which literal fragments each print call emits, and where."""

    def __init__(self, program: Program, outputs: list[RunOutput]):
        self.program = program
        self.outputs = [o for o in outputs if o.lines]
        # fragment -> the print statements that emit it (anywhere in the program)
        self.emitters: dict[str, set[int]] = {}
        self.by_func: dict[ir.FunctionIR, list[tuple[ir.S, str, re.Pattern]]] = {}
        # every print's line pattern with the statement that prints it: a log line another
        # print could have produced (`stride:{s} eval_time:` printing `stride:64 eval_time:`)
        # is no evidence for the one that spells the value out
        self.line_patterns: list[tuple[int, re.Pattern]] = []
        self._calls: dict[ir.FunctionIR, dict[int, list[ir.Call]]] = {}
        if not self.outputs:
            return
        for func in program.functions:
            for call, stmt in func.calls:
                template = _template(call)
                if template is None:
                    continue
                for segment in template.split("\n"):
                    if _distinctive(segment):
                        self.line_patterns.append((id(stmt), _line_pattern(segment)))
                for fragment, line_re in _fragments(template):
                    self.emitters.setdefault(fragment, set()).add(id(stmt))
                    self.by_func.setdefault(func, []).append((stmt, fragment, line_re))

    def ran(self, site: Site, function_ran_suffices: bool = False) -> list[Printed]:
        """Runs whose output shows the path of ``site`` was taken (one entry per run).
        ``function_ran_suffices``: the site's own guards are no question (no flag decides
        them), so a line printed in an enclosing block of its function shows it too."""
        if not self.outputs or site.stmt is None:
            return []
        statements = self._path_statements(site, function_ran_suffices)
        ids = {id(s) for s in statements}
        prints = [(stmt, frag, line_re) for stmt, frag, line_re in self._prints(ids)
                  if self.emitters.get(frag, set()) <= ids]
        found = []
        for output in self.outputs:
            for stmt, fragment, line_re in prints:
                line = self._find(output, fragment, line_re, ids)
                if line is not None:
                    found.append(Printed(fragment, output.path, line))
                    break
        return found

    def _find(self, output: RunOutput, fragment: str, line_re: re.Pattern, path_ids: set[int]) -> int | None:
        """The first output line that carries the fragment, reads as the whole template line
        that prints it, and no print off the path could have produced."""
        for number, text in output.lines:
            if fragment not in text or not line_re.search(text):
                continue
            if any(stmt_id not in path_ids and pattern.search(text) for stmt_id, pattern in self.line_patterns):
                continue
            return number
        return None

    def _prints(self, ids: set[int]) -> list[tuple[ir.S, str, re.Pattern]]:
        out = []
        for func_prints in self.by_func.values():
            out.extend(p for p in func_prints if id(p[0]) in ids)
        return out

    def _calls_of(self, func: ir.FunctionIR) -> dict[int, list[ir.Call]]:
        cached = self._calls.get(func)
        if cached is None:
            cached = self._calls[func] = {}
            for call, stmt in func.calls:
                cached.setdefault(id(stmt), []).append(call)
        return cached

    def _path_statements(self, site: Site, enclosing: bool = False) -> list[ir.S]:
        """The flagged statement, the statements behind exactly its guards (its block), with
        ``enclosing`` those of the blocks around it too, and every statement of the functions
        those call (a few levels deep)."""
        func, stmt = site.func, site.stmt
        # a guard is its test and the branch taken: the else of `if stride > 0` is not its if
        guards = tuple((id(t), taken) for t, taken in stmt.guards)
        chosen = [stmt]
        if guards or enclosing:
            for s in self.program.statements(func):
                if s is stmt:
                    continue
                own = tuple((id(t), taken) for t, taken in s.guards)
                inside = bool(guards) and own[:len(guards)] == guards
                around = enclosing and own == guards[:len(own)]
                if inside or around:
                    chosen.append(s)
        seen: set[ir.FunctionIR] = set()
        frontier = [(s, func) for s in chosen]
        for _depth in range(MAX_CALL_DEPTH):
            nxt = []
            for s, owner in frontier:
                for call in self._calls_of(owner).get(id(s), ()):
                    resolved = self.program.resolve(call, owner)
                    callee = resolved.target if resolved is not None and resolved.kind == "function" else None
                    if callee is None or callee in seen:
                        continue
                    seen.add(callee)
                    body = self.program.statements(callee)
                    chosen.extend(body)
                    nxt.extend((b, callee) for b in body)
            frontier = nxt
        return chosen

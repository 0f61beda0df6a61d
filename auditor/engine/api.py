"""The types of the AST rule API: where a rule points (``Site``), what it reports (``Hit``) and
the ruling it enforces (``Ruling``).

No runtime import of the rest of the package (the engine model is named for type checkers
only), so the rule base can type ``AstRule.check`` and ``AstRule.hit`` with these without
pulling in the engine, and the engine can import them without importing the rule base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import Severity
from ..tracks import LAUNCH_DATE

if TYPE_CHECKING:
    from . import ir


@dataclass(frozen=True)
class Ruling:
    """The ruling a legality rule enforces: its rules-catalogue id, the date from which
    submissions are held to it, where it was made, and whether it is disputed.

    ``date`` is the launch date for rulings that spell out a launch rule; it is the ruling's
    own date for one that restricted a practice maintainers had already merged (code dated
    before it gets info naming the ruling). A disputed ruling gives at most a warning.
    """

    id: str
    date: str = LAUNCH_DATE
    source: str = "launch README"
    disputed: bool = False

    def describe(self) -> str:
        return f"{self.id}, {self.source}, {self.date}" + (" (disputed)" if self.disputed else "")


@dataclass(frozen=True)
class Site:
    """A place in the code: the function, the statement and optionally the expression."""

    func: ir.FunctionIR
    stmt: ir.S | None
    x: ir.X | None = None

    @property
    def node(self):
        if self.x is not None and self.x.node is not None:
            return self.x.node
        if self.stmt is not None:
            return self.stmt.node
        return self.func.node

    @property
    def top(self):
        return self.stmt.top if self.stmt is not None else self.func.top

    @property
    def file(self) -> ir.FileIR:
        return self.func.file

    def line(self) -> int | None:
        try:
            return self.file.positions.span(self.node, self.top).start_line
        except Exception:
            try:
                return self.file.positions.top_span(self.top).start_line
            except Exception:
                return None

    def span(self) -> tuple[int | None, int | None]:
        try:
            sp = self.file.positions.span(self.node, self.top)
            return sp.start_line, sp.end_line
        except Exception:
            line = self.line()
            return line, line


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

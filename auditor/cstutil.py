"""libcst helpers shared by the unwrapper, the code-bytes counter and the rule engine.

Static mode parses submission code with libcst only: never ``compile``, ``ast.parse``,
``exec``, ``eval`` or ``import`` (``ast.parse`` itself goes through ``compile``).

Line numbers: libcst's ``PositionProvider`` regenerates the whole module with position
tracking, which costs about 1.7x a parse. Findings need lines for a handful of nodes, so
positions are resolved lazily, one top-level statement at a time: the start line of every
top-level statement comes from one plain code generation (about 0.25x a parse), and the
positions inside a statement come from running ``PositionProvider`` on a one-statement
module that shares the statement's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider


class SourceParseError(Exception):
    """The source is not valid Python for libcst. ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def parse_module(source: str) -> cst.Module:
    """Parse Python source with libcst, turning libcst's errors into SourceParseError."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise SourceParseError(f"not valid Python: {exc.message} (line {exc.raw_line})", exc.raw_line) from None
    except RecursionError:
        raise SourceParseError("not parseable: nesting too deep") from None
    except Exception as exc:  # libcst's native parser can raise other errors on odd input
        raise SourceParseError(f"not parseable: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Span:
    start_line: int
    end_line: int


class LazyPositions:
    """Line spans of nodes of one parsed module, computed only when asked for.

    Callers pass the top-level statement (an element of ``module.body``) that contains the
    node; the rule engine and the scanners know it from their traversal.
    """

    def __init__(self, module: cst.Module):
        self._module = module
        self._top_start: dict[int, int] | None = None
        self._resolved: dict[int, dict[cst.CSTNode, CodeRange]] = {}

    def top_start_lines(self) -> dict[int, int]:
        """Start line of every top-level statement, keyed by ``id(statement)`` (leading
        comments and blank lines included), from one plain code generation."""
        if self._top_start is None:
            module = self._module
            line = 1 + sum(module.code_for_node(h).count("\n") for h in module.header)
            starts: dict[int, int] = {}
            for stmt in module.body:
                starts[id(stmt)] = line
                line += module.code_for_node(stmt).count("\n")
            self._top_start = starts
        return self._top_start

    def span(self, node: cst.CSTNode, top: cst.CSTNode) -> Span:
        """Span of ``node``, which lies inside the top-level statement ``top``."""
        start = self.top_start_lines().get(id(top))
        if start is None:
            raise ValueError("top is not a top-level statement of this module")
        ranges = self._resolved.get(id(top))
        if ranges is None:
            sub = cst.Module(body=[top], default_indent=self._module.default_indent,
                             default_newline=self._module.default_newline)
            ranges = MetadataWrapper(sub, unsafe_skip_copy=True).resolve(PositionProvider)
            self._resolved[id(top)] = ranges
        rng = ranges.get(node)
        if rng is None:
            raise ValueError("node is not inside the given top-level statement")
        return Span(start + rng.start.line - 1, start + rng.end.line - 1)

    def top_span(self, top: cst.CSTNode) -> Span:
        return self.span(top, top)


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None

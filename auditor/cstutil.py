"""libcst helpers shared by the unwrapper, the code-bytes counter and the rule engine.

Static mode parses submission code with libcst only: never ``compile``, ``ast.parse``,
``exec``, ``eval`` or ``import`` (``ast.parse`` itself goes through ``compile``). Line
numbers of nodes come from ``pgolf_audit.lines.LineTable``.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Iterator

import libcst as cst


class SourceParseError(Exception):
    """The source is not valid Python for libcst. ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def parse_module(source: str) -> cst.Module:
    """Parse Python source with libcst, turning libcst's errors into SourceParseError."""
    try:
        with _nodes_unvalidated():
            return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise SourceParseError(f"not valid Python: {exc.message} (line {exc.raw_line})", exc.raw_line) from None
    except RecursionError:
        raise SourceParseError("not parseable: nesting too deep") from None
    except Exception as exc:  # libcst's native parser can raise other errors on odd input
        raise SourceParseError(f"not parseable: {type(exc).__name__}: {exc}") from None


@contextmanager
def _nodes_unvalidated() -> Iterator[None]:
    """Node construction without libcst's per-node validation, for the parser only.

    Every node re-checks its own fields in ``__post_init__`` (a tenth of an audit's time on
    real scripts); nodes the parser builds from text it has just accepted cannot fail that
    check, and libcst's own comment there suggests skipping it when parsing. Nodes built
    anywhere else (tests, the example writers) are still validated.
    """
    original = cst.CSTNode.__post_init__
    cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
    try:
        yield
    finally:
        cst.CSTNode.__post_init__ = original  # type: ignore[method-assign]


def _no_validation(self: cst.CSTNode) -> None:
    return None


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


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
# Fields holding only whitespace, comments and punctuation: half of a tree's nodes, and no
# read-only visitor here looks at them.
_TRIVIA_FIELDS = frozenset({
    "leading_lines", "lines_after_decorators", "trailing_whitespace", "newline", "header", "footer",
    "lpar", "rpar", "lbracket", "rbracket", "lbrace", "rbrace", "comma", "semicolon", "colon", "equal", "dot",
    "star", "walrus", "arrow", "asynchronous",
})


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.name not in _TRIVIA_FIELDS and not f.name.startswith("whitespace")
        )
    return names


def visit_readonly(node: cst.CSTNode, visitor: object) -> None:
    """Call ``visitor.visit_<NodeClass>(node)`` for every node under ``node``, pre-order, and
    skip a node's children when that method returns False.

    A read-only stand-in for ``node.visit(visitor)``: libcst's own visit rebuilds every node it
    passes (that is how transformers work), which costs about as much as a parse. Reading the
    dataclass fields directly costs a fraction. ``leave_*`` methods are not called, and
    whitespace, comment and punctuation fields are not descended into.
    """
    stack = [node]
    pop, push = stack.pop, stack.extend
    while stack:
        current = pop()
        method = getattr(visitor, "visit_" + type(current).__name__, None)
        if method is not None and method(current) is False:
            continue
        children: list[cst.CSTNode] = []
        for name in _field_names(type(current)):
            value = getattr(current, name)
            if isinstance(value, cst.CSTNode):
                children.append(value)
            elif isinstance(value, (list, tuple)):
                children.extend(v for v in value if isinstance(v, cst.CSTNode))
        push(reversed(children))

"""Line numbers of libcst nodes, without a metadata provider.

libcst's ``PositionProvider`` regenerates the code with position tracking at about 1.7x a
parse for a whole module. Findings need only lines, and usually in a few functions, so:

* the start line of every top-level statement comes from one scan of the source text (a
  regular expression finds strings, comments, brackets and line continuations; a line that
  starts at column 0 outside them starts a statement, decorators and ``else``-like clauses
  joined to theirs). When the scan does not find exactly one start per statement, the
  whole module is generated once instead;
* inside a top-level statement, lines come from generating that statement's code alone
  with a code-generation state that counts newlines as tokens are emitted and notes, for
  each node, the line of its first real token (not indentation, blank lines or comments;
  the ``def``/``class`` keyword for decorated definitions) and the line its last token ends
  on.

Nothing is computed until a finding asks for a line, and then only for the statements that
hold findings. The results agree with ``PositionProvider`` on statement and expression
lines (tested).
"""

from __future__ import annotations

import bisect
import contextlib
import re
from dataclasses import dataclass

import libcst as cst
from libcst._nodes.internal import CodegenState

_DEFINITIONS = (cst.FunctionDef, cst.ClassDef)
_NO_POSITION = contextlib.nullcontext()

_TOKENS = re.compile(
    r"""(?P<str>[rRbBuUfF]{0,2}(?:'''(?:\\[\s\S]|[^\\])*?'''|\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"|'(?:\\[\s\S]|[^'\\\n])*'|"(?:\\[\s\S]|[^"\\\n])*"))"""
    r"""|(?P<comment>\#[^\n]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<cont>\\\r?\n)"""
)
_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")


@dataclass(frozen=True)
class LineSpan:
    start_line: int
    end_line: int


class _SyntacticRange:
    """What ``record_syntactic_position`` marks: a node's own code without its parentheses
    (or, for a definition, from its keyword on). One reusable object with a stack, instead
    of a generator-based context manager per node."""

    __slots__ = ("state", "stack")

    def __init__(self, state: "_LineCountingState"):
        self.state = state
        self.stack: list[tuple[cst.CSTNode, cst.CSTNode | None, bool]] = []

    def __enter__(self) -> None:
        node, _end_node, borrowed_start = self.stack[-1]
        if borrowed_start:
            return
        state = self.state
        state.starts.pop(node, None)  # a "(" or "@" seen so far is not the node's start
        state.waiting.append(node)

    def __exit__(self, *exc) -> bool:
        node, end_node, _borrowed = self.stack.pop()
        state = self.state
        if end_node is None:
            state.syntactic_ends[node] = state.line - 1 if state.at_line_start else state.line
        else:
            state.end_links[node] = end_node  # ends where that child ends (not at a trailing comment)
        return False


class _LineCountingState(CodegenState):
    def __init__(self, module: cst.Module):
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1
        self.at_line_start = True
        self.waiting: list[cst.CSTNode] = []
        self.waiting_definitions: list[cst.CSTNode] = []
        self.starts: dict[cst.CSTNode, int] = {}
        self.ends: dict[cst.CSTNode, int] = {}
        self.syntactic_ends: dict[cst.CSTNode, int] = {}
        self.end_links: dict[cst.CSTNode, cst.CSTNode] = {}
        self.syntactic = _SyntacticRange(self)

    def add_token(self, value: str) -> None:
        if value and not value.isspace() and value[0] != "#":
            line = self.line
            waiting = self.waiting
            if waiting:
                starts = self.starts
                if value == "@":
                    # a decorated def/class starts at its keyword, not at its decorators
                    for node in waiting:
                        if isinstance(node, _DEFINITIONS):
                            self.waiting_definitions.append(node)
                        else:
                            starts[node] = line
                else:
                    for node in waiting:
                        starts[node] = line
                waiting.clear()
            if self.waiting_definitions and value in ("def", "class", "async"):
                for node in self.waiting_definitions:
                    self.starts[node] = line
                self.waiting_definitions.clear()
        if "\n" in value:
            self.line += value.count("\n")
        if value:
            self.at_line_start = value[-1] == "\n"

    def add_indent_tokens(self) -> None:
        self.at_line_start = False  # indentation only: no text, no newline

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.waiting.append(node)

    def after_codegen(self, node: cst.CSTNode) -> None:
        end = self.syntactic_ends.get(node)
        if end is None:
            linked = self.end_links.get(node)
            end = self.ends.get(linked) if linked is not None else None
        self.ends[node] = end if end is not None else (self.line - 1 if self.at_line_start else self.line)

    def record_syntactic_position(self, node, *, start_node=None, end_node=None):
        self.syntactic.stack.append((node, end_node, start_node is not None))
        return self.syntactic


def top_level_starts(source: str) -> list[int] | None:
    """The 1-based first line of each top-level statement, from the text alone; None when
    the text has something the scan does not follow (an unterminated string)."""
    line_offsets = [0]
    for m in re.finditer(r"\n", source):
        line_offsets.append(m.end())
    n_lines = len(line_offsets)
    continuation = bytearray(n_lines + 2)  # per 1-based line: inside brackets/strings/after "\"
    depth = 0
    for m in _TOKENS.finditer(source):
        kind = m.lastgroup
        if kind == "comment":
            continue
        if kind == "open":
            depth += 1
            if depth == 1:
                # lines after the outermost bracket until it closes continue the statement
                open_line = bisect.bisect_right(line_offsets, m.start())
            continue
        if kind == "close":
            if depth == 0:
                return None
            depth -= 1
            if depth == 0:
                last = bisect.bisect_right(line_offsets, m.start())
                for ln in range(open_line + 1, last + 1):
                    continuation[ln] = 1
            continue
        start_line = bisect.bisect_right(line_offsets, m.start())
        end_line = bisect.bisect_right(line_offsets, m.end() - 1)
        if kind == "cont":
            continuation[start_line + 1] = 1
        elif end_line > start_line:  # a string over several lines
            for ln in range(start_line + 1, end_line + 1):
                continuation[ln] = 1
    if depth:
        return None
    starts: list[int] = []
    joining_decorator = False
    for ln in range(1, n_lines + 1):
        begin = line_offsets[ln - 1]
        end = line_offsets[ln] - 1 if ln < n_lines else len(source)
        text = source[begin:end]
        if continuation[ln] or not text or text[0] in " \t\r\f#" or text.isspace():
            continue
        if _CLAUSE.match(text):
            continue  # the else/except of a top-level compound statement
        if joining_decorator:
            if text.startswith(("def ", "class ", "async ", "def\t", "class\t")):
                joining_decorator = False
                starts.append(ln)  # a decorated definition starts at its keyword
            continue
        if text[0] == "@":
            joining_decorator = True
            continue
        starts.append(ln)
    return starts


class LineTable:
    """Lines of the nodes of one module, computed on first use, one top-level statement at
    a time."""

    def __init__(self, module: cst.Module, source: str | None = None):
        self._module = module
        self._source = source
        self._top_starts: dict[int, int] | None = None
        self._states: dict[int, tuple[_LineCountingState, int]] = {}
        self._whole: _LineCountingState | None = None

    def _generate_whole(self) -> _LineCountingState:
        if self._whole is None:
            state = _LineCountingState(self._module)
            self._module._codegen(state)
            self._whole = state
        return self._whole

    def _starts(self) -> dict[int, int] | None:
        if self._top_starts is None:
            found = top_level_starts(self._source) if self._source is not None else None
            body = self._module.body
            if found is None or len(found) != len(body):
                self._top_starts = {}
            else:
                self._top_starts = {id(stmt): line for stmt, line in zip(body, found)}
        return self._top_starts or None

    def span(self, node: cst.CSTNode, top: cst.CSTNode | None = None) -> LineSpan:
        starts = self._starts() if top is not None else None
        if starts is None or id(top) not in starts:
            state = self._generate_whole()
            return _span(state, node, 0)
        cached = self._states.get(id(top))
        if cached is None:
            state = _LineCountingState(self._module)
            top._codegen(state)
            own = state.starts.get(top)
            if own is None:
                raise ValueError("top is not a statement")
            cached = (state, starts[id(top)] - own)
            self._states[id(top)] = cached
        state, shift = cached
        return _span(state, node, shift)

    def top_span(self, top: cst.CSTNode) -> LineSpan:
        return self.span(top, top)

    def line_of(self, node: cst.CSTNode, top: cst.CSTNode | None) -> int | None:
        """The first line of ``node`` inside the top-level statement ``top``; None when
        there is no statement or the node is not in it."""
        if top is None:
            return None
        try:
            return self.span(node, top).start_line
        except ValueError:
            return None

    def top_start_lines(self) -> dict[int, int]:
        """The first line of every top-level statement, keyed by ``id(statement)``: from the
        text scan when it agrees with the module, else from one generation of the module."""
        starts = self._starts()
        if starts is not None:
            return dict(starts)
        state = self._generate_whole()
        return {id(stmt): state.starts[stmt] for stmt in self._module.body if stmt in state.starts}


def _span(state: _LineCountingState, node: cst.CSTNode, shift: int) -> LineSpan:
    start = state.starts.get(node)
    if start is None:
        raise ValueError("node is not part of this statement")
    end = state.ends.get(node, start)
    return LineSpan(start + shift, max(start, end) + shift)

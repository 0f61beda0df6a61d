"""Checks of submitted source before and after parsing: the coding cookie, shapes that would
crash or stall the parser, and calls that run data (``exec``/``eval``/``compile`` however they
are spelled), the hidden code that makes a script unanalysable (PG903)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

import libcst as cst

from pgolf_audit.cstutil import dotted_name, visit_readonly
from pgolf_audit.lines import LineTable
from .unwrap_types import UnwrapError
from .unwrap_literals import LiteralError, simple_string_value

# ---------------------------------------------------------------------------------------
# Source checks before any parse, and code that runs data (hidden code)

_UTF8_NAMES = {"utf-8", "utf8", "utf_8", "u8", "utf", "cp65001", "utf-8-sig", "utf8-sig", "utf_8_sig"}
_COOKIE_RE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT_RE = re.compile(r"^[ \t\f]*(?:#.*)?$")

# CPython refuses more than 200 nested brackets ("too many nested parentheses"), so deeper
# nesting is not a program Python runs; libcst crashes or takes minutes on far less deep input.
MAX_BRACKET_DEPTH = 200
# Operators in one expression without a separator (1+1+...): libcst's time grows faster than
# linearly with the chain (2,000 terms take about a second, 20,000 more than five minutes).
MAX_OPERATOR_CHAIN = 1000
# The largest real training script has under 5,000 lines; libcst needs seconds per 10,000.
MAX_SOURCE_LINES = 30000
_SHAPE_TOKEN_RE = re.compile(
    r"""(?P<string>[rRbBuUfF]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*"))"""
    r"|(?P<comment>\#[^\n]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<sep>[,;:\n]|=(?!=))"
    r"|(?P<op>\*\*|//|<<|>>|[-+*/%@&|^~<>]|==|!=|\band\b|\bor\b|\bnot\b)",
    re.S,
)


def coding_cookie(text: str) -> str | None:
    """The encoding a coding cookie in the first two lines declares (PEP 263), lower-cased."""
    for line in text.split("\n", 2)[:2]:
        match = _COOKIE_RE.match(line)
        if match:
            return match.group(1).lower()
        if not _BLANK_OR_COMMENT_RE.match(line.rstrip("\r")):
            return None
    return None


def check_source_shape(text: str, file: str, layer: int = 0, *, from_file: bool = True) -> None:
    """Refuse, before libcst sees it, source that the audit cannot read as Python reads it:
    a coding cookie other than UTF-8 (``# coding: utf-7`` makes Python read statements where
    a UTF-8 reader sees a comment), bracket nesting past CPython's own limit, or an operator
    chain long enough to stall the parser. ``from_file``: the text is a file that Python
    decodes by its cookie (exec of a str ignores the cookie)."""
    if from_file:
        declared = coding_cookie(text)
        if declared is not None and declared not in _UTF8_NAMES and not (declared in ("ascii", "us-ascii") and text.isascii()):
            raise UnwrapError(f"declares the source encoding {declared!r}; only UTF-8 source can be read as Python reads it",
                              file, 1, layer)
    lines = text.count("\n") + 1
    if lines > MAX_SOURCE_LINES:
        raise UnwrapError(f"{lines:,} lines (more than {MAX_SOURCE_LINES:,}); too large to analyse", file, None, layer)
    depth = chain = 0
    line = 1
    for match in _SHAPE_TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise UnwrapError(f"brackets nested more than {MAX_BRACKET_DEPTH} deep (Python itself refuses this)",
                                  file, line, layer)
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "sep":
            chain = 0
        elif kind == "op":
            chain += 1
            if chain > MAX_OPERATOR_CHAIN:
                line = text.count("\n", 0, match.start()) + 1
                raise UnwrapError(f"an expression chains more than {MAX_OPERATOR_CHAIN} operators; too large to analyse",
                                  file, line, layer)


# Cheap test for code that could run data: a name of an exec-like builtin (not an attribute
# such as model.eval), the builtins namespace, or lookups that can reach it.
_RUNS_DATA_HINT_RE = re.compile(
    r"(?<![\w.])(?:exec|eval|compile|__import__|__builtins__|builtins|run_path|run_module|getattr|vars|globals|locals)\b"
    r"|__dict__|\bsys\s*\.\s*modules\b|\bmarshal\b|\bimport_module\b|__import__\b"
)
_EXEC_BUILTINS = {"exec", "eval", "compile", "__import__"}
_RUNS_DATA_FUNCTIONS = {"builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__",
                        "runpy.run_path", "runpy.run_module", "importlib.import_module", "importlib.__import__",
                        "marshal.loads",
                        "types.FunctionType", "types.CodeType"}
_BUILTINS_NAMESPACE = {"builtins", "__builtins__"}
_HIDDEN_NAME_STRINGS = {"__builtins__", "builtins", "__import__"}


@dataclass(frozen=True)
class DataRunningCall:
    """A place where the code reaches exec/eval/compile (or the builtins namespace) in a way
    that runs something other than a literal."""

    line: int | None
    code: str
    top: cst.BaseStatement
    node: cst.CSTNode


class _RunsDataScanner:
    """Finds references to exec-like callables however they are spelled: direct calls, import
    aliases, assigned aliases (``run = exec``), the builtins module or ``__builtins__`` reached
    by attribute, ``getattr``, ``vars(...)[...]`` or a string key. A call of such a callable
    with only literal arguments (``exec("x = 1")``) is readable and is not reported."""

    def __init__(self, module: cst.Module):
        self.module = module
        self.aliases: dict[str, str] = {}   # local name -> qualified callable/module it names
        self.defined: set[str] = set()      # names the module defines itself (def, class, other assignments)
        self.found: list[tuple[cst.CSTNode, cst.BaseStatement]] = []
        self.top: cst.BaseStatement | None = None
        self.literal_calls: set[int] = set()   # ids of callee nodes called with literal arguments only
        self.binding_names: set[int] = set()   # ids of Name nodes that name a def, class, parameter or keyword

    def scan(self) -> list[tuple[cst.CSTNode, cst.BaseStatement]]:
        # import aliases from the top level (no walk of the tree: one walk, below, is the
        # cost); an alias made elsewhere (run = exec) is itself a reported reference
        collector = _BindingCollector(self)
        for top in self.module.body:
            if isinstance(top, cst.SimpleStatementLine):
                for small in top.body:
                    if isinstance(small, cst.Import):
                        collector.visit_Import(small)
                    elif isinstance(small, cst.ImportFrom):
                        collector.visit_ImportFrom(small)
                    elif isinstance(small, cst.Assign):
                        collector.visit_Assign(small)
        # module-level definitions shadow a builtin of the same name (methods named eval do not)
        for top in self.module.body:
            if isinstance(top, (cst.FunctionDef, cst.ClassDef)) and top.name.value not in self.aliases:
                self.defined.add(top.name.value)
            elif isinstance(top, cst.SimpleStatementLine):
                for small in top.body:
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else []
                    self.defined.update(t.value for t in targets if isinstance(t, cst.Name) and t.value not in self.aliases)
        for top in self.module.body:
            self.top = top
            visit_readonly(top, self)
        return self.found

    def resolve(self, node: cst.BaseExpression) -> str | None:
        """Qualified name an expression refers to, through import and assignment aliases."""
        if isinstance(node, cst.Name):
            if node.value in self.aliases:
                return self.aliases[node.value]
            if node.value in self.defined:
                return None
            if node.value in _EXEC_BUILTINS:
                return "builtins." + node.value
            if node.value == "__builtins__":
                return "builtins"
            return node.value
        if isinstance(node, cst.Attribute):
            owner = self.resolve(node.value)
            return f"{owner}.{node.attr.value}" if owner is not None else None
        return None

    def dangerous(self, node: cst.BaseExpression) -> bool:
        name = self.resolve(node)
        if name is None:
            return False
        return name in _RUNS_DATA_FUNCTIONS or name in _BUILTINS_NAMESPACE or name.startswith("builtins.__dict__")

    def report(self, node: cst.CSTNode) -> None:
        assert self.top is not None
        self.found.append((node, self.top))

    def visit_Call(self, node: cst.Call) -> bool | None:
        args_literal = all(isinstance(arg.value, (cst.SimpleString, cst.ConcatenatedString, cst.Integer))
                           and arg.star == "" for arg in node.args)
        func = node.func
        if self.dangerous(func):
            name = self.resolve(func) or ""
            if args_literal and name not in _BUILTINS_NAMESPACE and not self.names_builtins(node):
                self.literal_calls.add(id(func))
            else:
                self.report(node)
                return False
        for arg in node.args:  # an exec-like callable handed to other code
            if self.dangerous(arg.value):
                self.report(arg.value)
        if isinstance(func, cst.Name) and func.value == "getattr" and "getattr" not in self.defined and len(node.args) >= 2:
            owner, attr = node.args[0].value, node.args[1].value
            attr_value = _literal_text(attr)
            if self.dangerous(owner) or (attr_value is not None and attr_value in _EXEC_BUILTINS | _HIDDEN_NAME_STRINGS):
                self.report(node)
                return False
        return None

    def names_builtins(self, node: cst.Call) -> bool:
        return any(_literal_text(arg.value) in _HIDDEN_NAME_STRINGS for arg in node.args)

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self.literal_calls or id(node) in self.binding_names:
            return
        name = self.resolve(node)
        # compile is also a common flag or parameter name: reported where it is called,
        # aliased or handed on, not where a value of that name is merely tested
        if name in _BUILTINS_NAMESPACE or (self.dangerous(node) and name != "builtins.compile"):
            self.report(node)

    def visit_Attribute(self, node: cst.Attribute) -> bool | None:
        if id(node) in self.literal_calls:
            return False
        if self.dangerous(node):
            self.report(node)
            return False
        if self.resolve(node.value) not in _BUILTINS_NAMESPACE:  # builtins.print: a named, harmless builtin
            visit_readonly(node.value, self)  # the attribute's own name (model.eval) is no reference
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.binding_names.add(id(target.target))  # a name assigned to is no reference
        if self.dangerous(node.value):  # run = exec
            self.report(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.binding_names.add(id(node.target))  # a dataclass field named eval

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.binding_names.add(id(node.name))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.binding_names.add(id(node.name))

    def visit_Param(self, node: cst.Param) -> None:
        self.binding_names.add(id(node.name))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.binding_names.add(id(node.keyword))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if _literal_text(node) in _HIDDEN_NAME_STRINGS:
            self.report(node)

    def visit_Import(self, node: cst.Import) -> bool:
        # the builtins module under any name reaches exec; an import inside a function is
        # not in the top-level alias table, so it is reported where it is made
        if any((dotted_name(alias.name) or "") == "builtins" for alias in node.names):
            self.report(node)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        base = dotted_name(node.module) if node.module is not None and not node.relative else None
        if base is not None and not isinstance(node.names, cst.ImportStar):
            if any(f"{base}.{dotted_name(alias.name)}" in _RUNS_DATA_FUNCTIONS for alias in node.names):
                self.report(node)
        elif base == "builtins":  # from builtins import *
            self.report(node)
        return False


class _BindingCollector:
    """Top-level aliases: imports and ``name = <exec-like>`` assignments."""

    def __init__(self, scanner: _RunsDataScanner):
        self.scanner = scanner

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scanner.aliases[alias.asname.name.value] = full
            else:
                head = full.split(".")[0]
                self.scanner.aliases[head] = head
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return False
        base = dotted_name(node.module) or ""
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            self.scanner.aliases[local] = f"{base}.{name}"
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.bind(target.target, node.value)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.bind(node.target, node.value)

    def bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if not isinstance(target, cst.Name):
            return
        resolved = self.scanner.resolve(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
        if resolved is not None and (resolved in _RUNS_DATA_FUNCTIONS or resolved in _BUILTINS_NAMESPACE):
            self.scanner.aliases[target.value] = resolved


def _literal_text(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        try:
            value = simple_string_value(node.value)
        except LiteralError:
            return None
        return value if isinstance(value, str) else None
    return None


def calls_running_data(module: cst.Module) -> list[DataRunningCall]:
    """Every place where ``module`` reaches exec/eval/compile or the builtins namespace other
    than by a call with literal arguments, in source order."""
    found = _RunsDataScanner(module).scan()
    if not found:
        return []
    positions = LineTable(module)
    out = []
    for node, top in found:
        text = " ".join(module.code_for_node(node).split())
        out.append(DataRunningCall(positions.line_of(node, top), text if len(text) <= 80 else text[:77] + "...", top, node))
    return out

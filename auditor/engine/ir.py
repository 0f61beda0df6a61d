"""A compact model of one Python file, built in a single walk over its libcst tree.

The rules never look at libcst nodes directly: the builder turns statements and expressions
into small objects (no whitespace, no parentheses, operator names as strings), records the
functions and classes, the import aliases and every call, and remembers for each statement
the top-level statement that holds it (line numbers are resolved from that only when a
finding needs one). Every later analysis (data flow, effect summaries, feature flags) runs
over this model, so the libcst tree is traversed exactly once per file.

Nothing here executes, imports or compiles the code being read.

Over 700 lines for a reason: the model's types (expressions, statements, definitions), the
one builder that makes them from libcst nodes (about 450 lines, one handler per node type)
and the renderer that prints them back change together whenever a node type is added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import libcst as cst

# --------------------------------------------------------------------------- expressions


class X:
    """An expression. ``names`` holds every plain name read anywhere inside it."""

    __slots__ = ("node", "names")

    def children(self) -> Iterator["X"]:
        return iter(())


EMPTY: frozenset[str] = frozenset()


def _union(parts: list["X | None"]) -> frozenset[str]:
    names: set[str] = set()
    for p in parts:
        if p is not None and p.names:
            names |= p.names
    return frozenset(names) if names else EMPTY


_NAME_SETS: dict[str, frozenset[str]] = {}


class Name(X):
    __slots__ = ("id",)

    def __init__(self, node, id: str):
        names = _NAME_SETS.get(id)
        if names is None:
            names = _NAME_SETS[id] = frozenset((id,))
        self.node, self.id, self.names = node, id, names


class Attr(X):
    __slots__ = ("base", "attr")

    def __init__(self, node, base: X, attr: str):
        self.node, self.base, self.attr, self.names = node, base, attr, base.names

    def children(self):
        yield self.base


class Call(X):
    """A call; ``conds`` are the conditions of enclosing ``a if c else b`` expressions
    (with the branch taken), so a constructor call inside one is known to be conditional."""

    __slots__ = ("func", "args", "kwargs", "conds")

    def __init__(self, node, func: X, args: list[X], kwargs: dict[str, X], conds: tuple):
        self.node, self.func, self.args, self.kwargs, self.conds = node, func, args, kwargs, conds
        self.names = _union([func, *args, *kwargs.values()])

    def children(self):
        yield self.func
        yield from self.args
        yield from self.kwargs.values()

    def arg(self, index: int, keyword: str | None = None) -> X | None:
        if keyword and keyword in self.kwargs:
            return self.kwargs[keyword]
        return self.args[index] if index < len(self.args) else None


class Slice(X):
    __slots__ = ("lower", "upper", "step")

    def __init__(self, node, lower, upper, step):
        self.node, self.lower, self.upper, self.step = node, lower, upper, step
        self.names = _union([lower, upper, step])

    def children(self):
        for p in (self.lower, self.upper, self.step):
            if p is not None:
                yield p


class Sub(X):
    __slots__ = ("base", "index")

    def __init__(self, node, base: X, index: list[X]):
        self.node, self.base, self.index = node, base, index
        self.names = _union([base, *index])

    def children(self):
        yield self.base
        yield from self.index

    @property
    def index_names(self) -> frozenset[str]:
        return _union(list(self.index))


class BinOp(X):
    __slots__ = ("op", "left", "right")

    def __init__(self, node, op: str, left: X, right: X):
        self.node, self.op, self.left, self.right = node, op, left, right
        self.names = _union([left, right])

    def children(self):
        yield self.left
        yield self.right


class UnOp(X):
    __slots__ = ("op", "operand")

    def __init__(self, node, op: str, operand: X):
        self.node, self.op, self.operand, self.names = node, op, operand, operand.names

    def children(self):
        yield self.operand


class BoolOp(X):
    __slots__ = ("op", "left", "right")

    def __init__(self, node, op: str, left: X, right: X):
        self.node, self.op, self.left, self.right = node, op, left, right
        self.names = _union([left, right])

    def children(self):
        yield self.left
        yield self.right


class Compare(X):
    __slots__ = ("left", "ops", "rights")

    def __init__(self, node, left: X, ops: list[str], rights: list[X]):
        self.node, self.left, self.ops, self.rights = node, left, ops, rights
        self.names = _union([left, *rights])

    def children(self):
        yield self.left
        yield from self.rights


class IfExpr(X):
    __slots__ = ("test", "body", "orelse")

    def __init__(self, node, test: X, body: X, orelse: X):
        self.node, self.test, self.body, self.orelse = node, test, body, orelse
        self.names = _union([test, body, orelse])

    def children(self):
        yield self.test
        yield self.body
        yield self.orelse


class Const(X):
    """A number, string (f-strings keep their literal text and their expressions),
    ``True``/``False``/``None`` or ``...``."""

    __slots__ = ("value", "parts")

    def __init__(self, node, value: Any, parts: list[X] | None = None):
        self.node, self.value, self.parts = node, value, parts or []
        self.names = _union(self.parts) if parts else EMPTY

    def children(self):
        yield from self.parts


class Seq(X):
    """Tuple, list, set or dict display (dict items alternate key, value)."""

    __slots__ = ("kind", "items")

    def __init__(self, node, kind: str, items: list[X]):
        self.node, self.kind, self.items = node, kind, items
        self.names = _union(items)

    def children(self):
        yield from self.items


class Comp(X):
    """A comprehension or generator expression: ``elts`` (element, or key and value) and
    ``gens``, a list of (target, iterable, conditions)."""

    __slots__ = ("elts", "gens")

    def __init__(self, node, elts: list[X], gens: list[tuple[X, X, list[X]]]):
        self.node, self.elts, self.gens = node, elts, gens
        parts: list[X] = list(elts)
        for target, it, ifs in gens:
            parts += [target, it, *ifs]
        self.names = _union(parts)

    def children(self):
        yield from self.elts
        for target, it, ifs in self.gens:
            yield target
            yield it
            yield from ifs


class Lambda(X):
    __slots__ = ("params", "body")

    def __init__(self, node, params: list[str], body: X):
        self.node, self.params, self.body, self.names = node, params, body, body.names

    def children(self):
        yield self.body


class Other(X):
    """Anything else (await, yield, starred, walrus, ...): only its parts matter."""

    __slots__ = ("kind", "parts")

    def __init__(self, node, kind: str, parts: list[X]):
        self.node, self.kind, self.parts = node, kind, parts
        self.names = _union(parts)

    def children(self):
        yield from self.parts


def call_name(call: Call) -> str:
    """The called name without its receiver: `print`, `zeros` for `torch.zeros`; "" otherwise."""
    f = call.func
    return f.attr if isinstance(f, Attr) else (f.id if isinstance(f, Name) else "")


def walk(x: X | None) -> Iterator[X]:
    """Every expression inside ``x`` (``x`` first), without descending into lambdas."""
    if x is None:
        return
    stack = [x]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Lambda):
            continue
        stack.extend(node.children())


# --------------------------------------------------------------------------- statements


class S:
    """A statement. ``top`` is the top-level statement of the file that contains it (for
    line lookup); ``guards`` the enclosing ``if`` conditions as (test, taken) pairs,
    including the negated test of an earlier ``if ...: return`` in the same block."""

    __slots__ = ("node", "top", "guards")


class Assign(S):
    """``a = b = v``, ``a: T = v`` and ``a += v`` (``op`` is the operator of an augmented
    assignment, else None)."""

    __slots__ = ("targets", "value", "op")

    def __init__(self, node, top, guards, targets: list[X], value: X | None, op: str | None):
        self.node, self.top, self.guards = node, top, guards
        self.targets, self.value, self.op = targets, value, op


class ExprS(S):
    __slots__ = ("value",)

    def __init__(self, node, top, guards, value: X):
        self.node, self.top, self.guards, self.value = node, top, guards, value


class Return(S):
    __slots__ = ("value",)

    def __init__(self, node, top, guards, value: X | None):
        self.node, self.top, self.guards, self.value = node, top, guards, value


class If(S):
    __slots__ = ("test", "body", "orelse")

    def __init__(self, node, top, guards, test: X, body: list[S], orelse: list[S]):
        self.node, self.top, self.guards = node, top, guards
        self.test, self.body, self.orelse = test, body, orelse


class Loop(S):
    """``for`` (``target`` and ``iter``) or ``while`` (``test`` in ``iter``)."""

    __slots__ = ("kind", "target", "iter", "body", "orelse", "lid", "cache")

    def __init__(self, node, top, guards, kind: str, target: X | None, iter: X | None,
                 body: list[S], orelse: list[S], lid: int):
        self.node, self.top, self.guards = node, top, guards
        self.kind, self.target, self.iter, self.body, self.orelse, self.lid = kind, target, iter, body, orelse, lid
        self.cache: dict[str, Any] = {}


class With(S):
    __slots__ = ("items", "body")

    def __init__(self, node, top, guards, items: list[tuple[X, X | None]], body: list[S]):
        self.node, self.top, self.guards, self.items, self.body = node, top, guards, items, body


class Try(S):
    __slots__ = ("body", "handlers", "orelse", "final")

    def __init__(self, node, top, guards, body, handlers, orelse, final):
        self.node, self.top, self.guards = node, top, guards
        self.body, self.handlers, self.orelse, self.final = body, handlers, orelse, final


class Def(S):
    __slots__ = ("func",)

    def __init__(self, node, top, guards, func: "FunctionIR"):
        self.node, self.top, self.guards, self.func = node, top, guards, func


class ClassS(S):
    __slots__ = ("cls",)

    def __init__(self, node, top, guards, cls: "ClassIR"):
        self.node, self.top, self.guards, self.cls = node, top, guards, cls


_DYNAMIC_IMPORTS = frozenset({"importlib.import_module", "import_module", "__import__"})


class Flow(S):
    """break, continue, pass, raise, del, assert, global, nonlocal, import."""

    __slots__ = ("kind", "value")

    def __init__(self, node, top, guards, kind: str, value: X | None = None):
        self.node, self.top, self.guards, self.kind, self.value = node, top, guards, kind, value


def statement_exprs(s: S) -> list[X]:
    """The expressions a statement evaluates itself (not those of nested blocks)."""
    if isinstance(s, Assign):
        return [*s.targets, s.value] if s.value is not None else list(s.targets)
    if isinstance(s, (ExprS, Return, Flow)):
        return [s.value] if s.value is not None else []
    if isinstance(s, If):
        return [s.test]
    if isinstance(s, Loop):
        return [x for x in (s.target, s.iter) if x is not None]
    if isinstance(s, With):
        out: list[X] = []
        for item, alias in s.items:
            out.append(item)
            if alias is not None:
                out.append(alias)
        return out
    return []


def blocks(s: S) -> list[list[S]]:
    if isinstance(s, If):
        return [s.body, s.orelse]
    if isinstance(s, Loop):
        return [s.body, s.orelse]
    if isinstance(s, With):
        return [s.body]
    if isinstance(s, Try):
        return [s.body, *s.handlers, s.orelse, s.final]
    return []


def walk_statements(body: list[S], into_defs: bool = False) -> Iterator[S]:
    stack = list(reversed(body))
    while stack:
        s = stack.pop()
        yield s
        if isinstance(s, Def) and not into_defs:
            continue
        if isinstance(s, Def):
            stack.extend(reversed(s.func.body))
            continue
        for block in reversed(blocks(s)):
            stack.extend(reversed(block))


# --------------------------------------------------------------------------- definitions


@dataclass(eq=False)
class FunctionIR:
    name: str
    qualname: str
    params: list[str]
    defaults: dict[str, X]
    decorators: list[X]
    body: list[S]
    node: cst.CSTNode
    top: cst.CSTNode
    file: "FileIR"
    cls: "ClassIR | None" = None
    parent: "FunctionIR | None" = None
    # every call in the body (not in nested defs) with the statement that evaluates it
    calls: list[list] = field(default_factory=list)
    name_refs: set[str] = field(default_factory=set)
    attr_refs: set[str] = field(default_factory=set)
    nested: list["FunctionIR"] = field(default_factory=list)
    guards: tuple = ()

    @property
    def is_module(self) -> bool:
        return self.name == "<module>"

    def __repr__(self) -> str:
        return f"<function {self.qualname} in {self.file.path}>"


@dataclass(eq=False)
class ClassIR:
    name: str
    bases: list[X]
    body: list[S]
    node: cst.CSTNode
    top: cst.CSTNode
    file: "FileIR"
    methods: dict[str, FunctionIR] = field(default_factory=dict)


@dataclass(eq=False)
class FileIR:
    path: str
    module: cst.Module
    positions: Any  # lines.LineTable (span(node, top) -> start_line, end_line)
    wrapper: str | None = None
    is_entry: bool = True
    module_func: FunctionIR | None = None
    functions: list[FunctionIR] = field(default_factory=list)
    classes: dict[str, ClassIR] = field(default_factory=dict)
    # local name -> dotted name it stands for ("F" -> "torch.nn.functional")
    aliases: dict[str, str] = field(default_factory=dict)
    # (module, line-statement, top) for each import, for rules about imported modules
    imports: list[tuple[str, S]] = field(default_factory=list)
    loop_count: int = 0


# --------------------------------------------------------------------------- builder

_BIN_OPS = {
    "Add": "+", "Subtract": "-", "Multiply": "*", "Divide": "/", "FloorDivide": "//", "Modulo": "%",
    "Power": "**", "MatrixMultiply": "@", "LeftShift": "<<", "RightShift": ">>", "BitAnd": "&",
    "BitOr": "|", "BitXor": "^",
}
_AUG_OPS = {k + "Assign": v for k, v in _BIN_OPS.items()}
_CMP_OPS = {
    "Equal": "==", "NotEqual": "!=", "LessThan": "<", "LessThanEqual": "<=", "GreaterThan": ">",
    "GreaterThanEqual": ">=", "Is": "is", "IsNot": "is not", "In": "in", "NotIn": "not in",
}
_UN_OPS = {"Minus": "-", "Plus": "+", "Not": "not", "BitInvert": "~"}


def _dotted(node: cst.BaseExpression | None) -> str:
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
    return ".".join(reversed(parts))


def _string_text(node: cst.BaseExpression) -> str | None:
    """The value of a plain string literal without evaluating anything (escapes are kept
    as written, which is enough for matching file names and env var names)."""
    if isinstance(node, cst.SimpleString):
        text = node.value
        i = 0
        while i < len(text) and text[i] in "rbuRBUfF":
            i += 1
        quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else text[i]
        return text[i + len(quote): len(text) - len(quote)]
    if isinstance(node, cst.ConcatenatedString):
        left, right = _string_text(node.left), _string_text(node.right)
        if left is None or right is None:
            return None
        return left + right
    return None


Hook = Callable[[cst.CSTNode, "Builder"], None]


class Builder:
    """Turns one libcst module into a ``FileIR`` in a single traversal.

    ``hooks`` maps a libcst node type name (``"Call"``, ``"Import"``) to callbacks that
    rules registered with ``visit_<Type>`` methods; they are called as the walk meets such
    a node, with the builder (``current_function``, ``current_top``) for context.
    """

    def __init__(self, file: FileIR, hooks: dict[str, list[Hook]] | None = None):
        self.file = file
        self.hooks = hooks or {}
        self.top: cst.CSTNode | None = None
        self.func: FunctionIR | None = None
        self.cls: ClassIR | None = None
        self.ifexp: tuple = ()
        self._expr_dispatch = {
            cst.Name: self._name, cst.Attribute: self._attribute, cst.Call: self._call,
            cst.Subscript: self._subscript, cst.BinaryOperation: self._binop,
            cst.UnaryOperation: self._unop, cst.BooleanOperation: self._boolop,
            cst.Comparison: self._compare, cst.IfExp: self._ifexp, cst.Integer: self._number,
            cst.Float: self._number, cst.Imaginary: self._imaginary, cst.SimpleString: self._string,
            cst.ConcatenatedString: self._concat, cst.FormattedString: self._fstring,
            cst.Tuple: self._seq, cst.List: self._seq, cst.Set: self._seq, cst.Dict: self._dict,
            cst.ListComp: self._comp, cst.SetComp: self._comp, cst.GeneratorExp: self._comp,
            cst.DictComp: self._dictcomp, cst.Lambda: self._lambda, cst.Ellipsis: self._ellipsis,
        }

    # -- entry
    def build(self) -> FileIR:
        module = self.file.module
        mod_func = FunctionIR("<module>", "<module>", [], {}, [], [], module, module, self.file)
        self.file.module_func = mod_func
        self.func = mod_func
        body: list[S] = []
        for stmt in module.body:
            self.top = stmt
            body.extend(self._stmt(stmt, ()))
        mod_func.body = self._apply_early_exits(body)
        return self.file

    @property
    def current_function(self) -> FunctionIR | None:
        return self.func

    @property
    def current_top(self) -> cst.CSTNode | None:
        return self.top

    def _hook(self, node: cst.CSTNode) -> None:
        for fn in self.hooks.get(type(node).__name__, ()):
            fn(node, self)

    # -- statements
    def _block(self, block: cst.BaseSuite, guards: tuple) -> list[S]:
        out: list[S] = []
        if isinstance(block, cst.SimpleStatementSuite):
            for small in block.body:
                out.extend(self._small(small, guards))
        else:
            for stmt in block.body:
                out.extend(self._stmt(stmt, guards))
        return self._apply_early_exits(out)

    @staticmethod
    def _apply_early_exits(stmts: list[S]) -> list[S]:
        """Statements after ``if c: return`` (or continue/break) run only when ``c`` is
        false: add that to their guards, which is what a feature flag check like ``if not
        args.ttt_enabled: return`` means. ``if c: raise ...`` is a sanity check, not a
        switch: a run that logged its result passed it, so it adds no guard."""
        extra: tuple = ()
        for s in stmts:
            if extra:
                _add_guards(s, extra)
            if isinstance(s, If) and not s.orelse and s.body and isinstance(s.body[-1], (Return, Flow)) \
                    and (isinstance(s.body[-1], Return) or s.body[-1].kind in ("continue", "break")):
                extra = extra + ((s.test, False),)
        return stmts

    def _stmt(self, stmt: cst.CSTNode, guards: tuple) -> list[S]:
        if self.hooks:
            self._hook(stmt)
        if isinstance(stmt, cst.SimpleStatementLine):
            out: list[S] = []
            for small in stmt.body:
                out.extend(self._small(small, guards))
            return out
        top = self.top
        start = len(self.func.calls) if self.func is not None else 0
        if isinstance(stmt, cst.If):
            test = self.expr(stmt.test)
            end = len(self.func.calls)
            body = self._block(stmt.body, guards + ((test, True),))
            orelse: list[S] = []
            if isinstance(stmt.orelse, cst.If):
                orelse = self._stmt(stmt.orelse, guards + ((test, False),))
            elif isinstance(stmt.orelse, cst.Else):
                orelse = self._block(stmt.orelse.body, guards + ((test, False),))
            s = If(stmt, top, guards, test, body, orelse)
            self._own(start, [s], end)
            return [s]
        if isinstance(stmt, cst.For):
            target, it = self.expr(stmt.target), self.expr(stmt.iter)
            end = len(self.func.calls)
            self.file.loop_count += 1
            lid = self.file.loop_count
            body = self._block(stmt.body, guards)
            orelse = self._block(stmt.orelse.body, guards) if stmt.orelse else []
            s = Loop(stmt, top, guards, "for", target, it, body, orelse, lid)
            self._own(start, [s], end)
            return [s]
        if isinstance(stmt, cst.While):
            test = self.expr(stmt.test)
            end = len(self.func.calls)
            self.file.loop_count += 1
            lid = self.file.loop_count
            body = self._block(stmt.body, guards)
            orelse = self._block(stmt.orelse.body, guards) if stmt.orelse else []
            s = Loop(stmt, top, guards, "while", None, test, body, orelse, lid)
            self._own(start, [s], end)
            return [s]
        if isinstance(stmt, cst.With):
            items = [(self.expr(i.item), self.expr(i.asname.name) if i.asname else None) for i in stmt.items]
            end = len(self.func.calls)
            s = With(stmt, top, guards, items, self._block(stmt.body, guards))
            self._own(start, [s], end)
            return [s]
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            body = self._block(stmt.body, guards)
            handlers = []
            for h in stmt.handlers:
                if h.name is not None:
                    self._bind_target(self.expr(h.name.name))
                handlers.append(self._block(h.body, guards))
            orelse = self._block(stmt.orelse.body, guards) if stmt.orelse else []
            final = self._block(stmt.finalbody.body, guards) if stmt.finalbody else []
            return [Try(stmt, top, guards, body, handlers, orelse, final)]
        if isinstance(stmt, cst.FunctionDef):
            return [self._function(stmt, guards)]
        if isinstance(stmt, cst.ClassDef):
            return [self._class(stmt, guards)]
        if isinstance(stmt, cst.Match):
            out = []
            subject = self.expr(stmt.subject)
            out.append(ExprS(stmt, top, guards, subject))
            for case in stmt.cases:
                out.extend(self._block(case.body, guards))
            return out
        return []

    def _bind_target(self, x: X) -> None:
        pass  # targets are read by the analyses from the statements themselves

    def _small(self, small: cst.BaseSmallStatement, guards: tuple) -> list[S]:
        start = len(self.func.calls) if self.func is not None else 0
        out = self._small_inner(small, guards)
        self._own(start, out)
        return out

    def _own(self, start: int, stmts: list[S], end: int | None = None) -> None:
        """Record which statement evaluates the calls collected since ``start``."""
        if self.func is None or not stmts:
            return
        calls = self.func.calls
        for entry in calls[start:end if end is not None else len(calls)]:
            if entry[1] is None:
                entry[1] = stmts[0]

    def _small_inner(self, small: cst.BaseSmallStatement, guards: tuple) -> list[S]:
        if self.hooks:
            self._hook(small)
        top = self.top
        if isinstance(small, cst.Assign):
            targets = [self.expr(t.target) for t in small.targets]
            s = Assign(small, top, guards, targets, self.expr(small.value), None)
            self._dynamic_import(s)
            return [s]
        if isinstance(small, cst.AnnAssign):
            value = self.expr(small.value) if small.value is not None else None
            return [Assign(small, top, guards, [self.expr(small.target)], value, None)]
        if isinstance(small, cst.AugAssign):
            op = _AUG_OPS.get(type(small.operator).__name__, "?")
            return [Assign(small, top, guards, [self.expr(small.target)], self.expr(small.value), op)]
        if isinstance(small, cst.Expr):
            return [ExprS(small, top, guards, self.expr(small.value))]
        if isinstance(small, cst.Return):
            return [Return(small, top, guards, self.expr(small.value) if small.value is not None else None)]
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            s = Flow(small, top, guards, "import")
            self._imports(small, s)
            return [s]
        if isinstance(small, cst.Raise):
            return [Flow(small, top, guards, "raise", self.expr(small.exc) if small.exc is not None else None)]
        if isinstance(small, cst.Assert):
            return [Flow(small, top, guards, "assert", self.expr(small.test))]
        if isinstance(small, cst.Del):
            return [Flow(small, top, guards, "del", self.expr(small.target))]
        if isinstance(small, cst.Break):
            return [Flow(small, top, guards, "break")]
        if isinstance(small, cst.Continue):
            return [Flow(small, top, guards, "continue")]
        if isinstance(small, (cst.Global, cst.Nonlocal)):
            return [Flow(small, top, guards, "global")]
        return [Flow(small, top, guards, "pass")]

    def _dynamic_import(self, s: "Assign") -> None:
        """``mod = importlib.import_module("helper")`` (or ``__import__``) is an import of
        ``helper`` under the name ``mod``: calls through it resolve like ``import helper as mod``."""
        value = s.value
        if not isinstance(value, Call) or len(s.targets) != 1 or not isinstance(s.targets[0], Name) or not value.args:
            return
        if render(value.func) not in _DYNAMIC_IMPORTS:
            return
        first = value.args[0]
        if isinstance(first, Const) and isinstance(first.value, str) and not first.parts and first.value:
            self.file.aliases[s.targets[0].id] = first.value
            self.file.imports.append((first.value, s))

    def _imports(self, node: cst.Import | cst.ImportFrom, s: S) -> None:
        aliases = self.file.aliases
        if isinstance(node, cst.Import):
            for alias in node.names:
                dotted = _dotted(alias.name)
                self.file.imports.append((dotted, s))
                if alias.asname is not None:
                    aliases[_dotted(alias.asname.name)] = dotted
                else:
                    head = dotted.split(".")[0]
                    aliases.setdefault(head, head)
            return
        module = _dotted(node.module) if node.module is not None else ""
        prefix = "." * len(node.relative) + module
        self.file.imports.append((prefix, s))
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = _dotted(alias.name)
            local = _dotted(alias.asname.name) if alias.asname is not None else name
            aliases[local] = f"{prefix}.{name}" if prefix else name
            self.file.imports.append((aliases[local], s))

    def _params(self, params: cst.Parameters) -> tuple[list[str], dict[str, X]]:
        names: list[str] = []
        defaults: dict[str, X] = {}
        for p in [*params.posonly_params, *params.params, *params.kwonly_params]:
            names.append(p.name.value)
            if p.default is not None:
                defaults[p.name.value] = self.expr(p.default)
        if isinstance(params.star_arg, cst.Param):
            names.append("*" + params.star_arg.name.value)
        if params.star_kwarg is not None:
            names.append("**" + params.star_kwarg.name.value)
        return names, defaults

    def _function(self, node: cst.FunctionDef, guards: tuple) -> Def:
        outer_func, outer_cls, outer_ifexp = self.func, self.cls, self.ifexp
        decorators = [self.expr(d.decorator) for d in node.decorators]
        params, defaults = self._params(node.params)
        name = node.name.value
        if outer_cls is not None and outer_func is not None and outer_func.is_module:
            qual = f"{outer_cls.name}.{name}"
        elif outer_cls is not None:
            qual = f"{outer_cls.name}.{name}"
        elif outer_func is not None and not outer_func.is_module:
            qual = f"{outer_func.qualname}.<locals>.{name}"
        else:
            qual = name
        func = FunctionIR(name, qual, params, defaults, decorators, [], node, self.top, self.file,
                          cls=outer_cls, parent=outer_func if outer_func and not outer_func.is_module else None,
                          guards=guards)
        self.file.functions.append(func)
        if outer_func is not None and not outer_func.is_module:
            outer_func.nested.append(func)
        if outer_cls is not None:
            outer_cls.methods[name] = func
        self.func, self.cls, self.ifexp = func, None, ()
        func.body = self._block(node.body, ())
        self.func, self.cls, self.ifexp = outer_func, outer_cls, outer_ifexp
        return Def(node, self.top, guards, func)

    def _class(self, node: cst.ClassDef, guards: tuple) -> ClassS:
        bases = [self.expr(a.value) for a in node.bases]
        for d in node.decorators:
            self.expr(d.decorator)
        cls = ClassIR(node.name.value, bases, [], node, self.top, self.file)
        self.file.classes.setdefault(cls.name, cls)
        outer_cls = self.cls
        self.cls = cls
        cls.body = self._block(node.body, ())
        self.cls = outer_cls
        return ClassS(node, self.top, guards, cls)

    # -- expressions
    def expr(self, node: cst.BaseExpression | None) -> X | None:
        if node is None:
            return None
        if self.hooks:
            self._hook(node)
        handler = self._expr_dispatch.get(type(node))
        if handler is not None:
            return handler(node)
        return self._other(node)

    def _name(self, node: cst.Name) -> X:
        if node.value in ("True", "False", "None"):
            return Const(node, {"True": True, "False": False, "None": None}[node.value])
        if self.func is not None:
            self.func.name_refs.add(node.value)
        return Name(node, node.value)

    def _attribute(self, node: cst.Attribute) -> X:
        if self.func is not None:
            self.func.attr_refs.add(node.attr.value)
        return Attr(node, self.expr(node.value), node.attr.value)

    def _call(self, node: cst.Call) -> X:
        func = self.expr(node.func)
        args: list[X] = []
        kwargs: dict[str, X] = {}
        for a in node.args:
            value = self.expr(a.value)
            if a.keyword is not None:
                kwargs[a.keyword.value] = value
            elif a.star:
                args.append(Other(a, "starred", [value]))
            else:
                args.append(value)
        call = Call(node, func, args, kwargs, self.ifexp)
        if self.func is not None:
            self.func.calls.append([call, None])
        return call

    def _subscript(self, node: cst.Subscript) -> X:
        base = self.expr(node.value)
        index: list[X] = []
        for el in node.slice:
            s = el.slice
            if isinstance(s, cst.Index):
                index.append(self.expr(s.value))
            else:
                index.append(Slice(s, self.expr(s.lower), self.expr(s.upper), self.expr(s.step)))
        return Sub(node, base, index)

    def _binop(self, node: cst.BinaryOperation) -> X:
        return BinOp(node, _BIN_OPS.get(type(node.operator).__name__, "?"), self.expr(node.left), self.expr(node.right))

    def _unop(self, node: cst.UnaryOperation) -> X:
        return UnOp(node, _UN_OPS.get(type(node.operator).__name__, "?"), self.expr(node.expression))

    def _boolop(self, node: cst.BooleanOperation) -> X:
        op = "and" if isinstance(node.operator, cst.And) else "or"
        return BoolOp(node, op, self.expr(node.left), self.expr(node.right))

    def _compare(self, node: cst.Comparison) -> X:
        ops, rights = [], []
        for c in node.comparisons:
            ops.append(_CMP_OPS.get(type(c.operator).__name__, "?"))
            rights.append(self.expr(c.comparator))
        return Compare(node, self.expr(node.left), ops, rights)

    def _ifexp(self, node: cst.IfExp) -> X:
        test = self.expr(node.test)
        outer = self.ifexp
        self.ifexp = outer + ((test, True),)
        body = self.expr(node.body)
        self.ifexp = outer + ((test, False),)
        orelse = self.expr(node.orelse)
        self.ifexp = outer
        return IfExpr(node, test, body, orelse)

    def _number(self, node) -> X:
        text = node.value.replace("_", "")
        try:
            value: Any = int(text, 0) if isinstance(node, cst.Integer) else float(text)
        except ValueError:
            value = None
        return Const(node, value)

    def _imaginary(self, node) -> X:
        return Const(node, None)

    def _ellipsis(self, node) -> X:
        return Const(node, Ellipsis)

    def _string(self, node: cst.SimpleString) -> X:
        return Const(node, _string_text(node))

    def _concat(self, node: cst.ConcatenatedString) -> X:
        parts: list[X] = []
        texts: list[str] = []
        for piece in (node.left, node.right):
            x = self.expr(piece)
            if isinstance(x, Const) and isinstance(x.value, str):
                texts.append(x.value)
                parts.extend(x.parts)
        return Const(node, "".join(texts), parts)

    def _fstring(self, node: cst.FormattedString) -> X:
        texts: list[str] = []
        parts: list[X] = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                texts.append(part.value)
            elif isinstance(part, cst.FormattedStringExpression):
                x = self.expr(part.expression)
                parts.append(x)
                texts.append("{}")
        return Const(node, "".join(texts), parts)

    def _seq(self, node) -> X:
        kind = {cst.Tuple: "tuple", cst.List: "list", cst.Set: "set"}[type(node)]
        items: list[X] = []
        for el in node.elements:
            value = self.expr(el.value)
            items.append(Other(el, "starred", [value]) if isinstance(el, cst.StarredElement) else value)
        return Seq(node, kind, items)

    def _dict(self, node: cst.Dict) -> X:
        items: list[X] = []
        for el in node.elements:
            if isinstance(el, cst.DictElement):
                items.append(self.expr(el.key))
                items.append(self.expr(el.value))
            else:
                items.append(Other(el, "starred", [self.expr(el.value)]))
        return Seq(node, "dict", items)

    def _gens(self, for_in: cst.CompFor) -> list[tuple[X, X, list[X]]]:
        gens = []
        while for_in is not None:
            gens.append((self.expr(for_in.target), self.expr(for_in.iter), [self.expr(i.test) for i in for_in.ifs]))
            for_in = for_in.inner_for_in
        return gens

    def _comp(self, node) -> X:
        gens = self._gens(node.for_in)
        return Comp(node, [self.expr(node.elt)], gens)

    def _dictcomp(self, node: cst.DictComp) -> X:
        gens = self._gens(node.for_in)
        return Comp(node, [self.expr(node.key), self.expr(node.value)], gens)

    def _lambda(self, node: cst.Lambda) -> X:
        params = [p.name.value for p in node.params.params]
        return Lambda(node, params, self.expr(node.body))

    def _other(self, node: cst.CSTNode) -> X:
        parts: list[X] = []
        for attr in ("expression", "value", "target", "exc"):
            child = getattr(node, attr, None)
            if isinstance(child, cst.BaseExpression):
                parts.append(self.expr(child))
            elif isinstance(child, cst.From):
                parts.append(self.expr(child.item))
        return Other(node, type(node).__name__, parts)


def _add_guards(s: S, extra: tuple) -> None:
    s.guards = s.guards + extra
    if isinstance(s, Def):
        s.func.guards = s.func.guards + extra
    for block in blocks(s):
        for inner in block:
            _add_guards(inner, extra)


def build_file(path: str, module: cst.Module, positions: Any, *, wrapper: str | None = None,
               is_entry: bool = True, hooks: dict[str, list[Hook]] | None = None) -> FileIR:
    return Builder(FileIR(path, module, positions, wrapper=wrapper, is_entry=is_entry), hooks).build()


# --------------------------------------------------------------------------- rendering


def render(x: X | None, subst: dict[str, str] | None = None, limit: int = 200) -> str:
    """Compact source-like text of an expression (for data keys and messages)."""
    out = _render(x, subst or {})
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _render(x: X | None, subst: dict[str, str]) -> str:
    if x is None:
        return ""
    if isinstance(x, Name):
        return subst.get(x.id, x.id)
    if isinstance(x, Attr):
        return f"{_wrap(x.base, subst, unary=True)}.{x.attr}"
    if isinstance(x, Call):
        args = [_render(a, subst) for a in x.args] + [f"{k}={_render(v, subst)}" for k, v in x.kwargs.items()]
        return f"{_wrap(x.func, subst, unary=True)}({', '.join(args)})"
    if isinstance(x, Slice):
        text = f"{_render(x.lower, subst)}:{_render(x.upper, subst)}"
        return text + (f":{_render(x.step, subst)}" if x.step is not None else "")
    if isinstance(x, Sub):
        return f"{_wrap(x.base, subst, unary=True)}[{', '.join(_render(i, subst) for i in x.index)}]"
    if isinstance(x, BinOp):
        return f"{_wrap(x.left, subst)} {x.op} {_wrap(x.right, subst)}"
    if isinstance(x, UnOp):
        sep = " " if x.op == "not" else ""
        return f"{x.op}{sep}{_wrap(x.operand, subst)}"
    if isinstance(x, BoolOp):
        return f"{_wrap(x.left, subst)} {x.op} {_wrap(x.right, subst)}"
    if isinstance(x, Compare):
        text = _wrap(x.left, subst)
        for op, r in zip(x.ops, x.rights):
            text += f" {op} {_wrap(r, subst)}"
        return text
    if isinstance(x, IfExpr):
        return f"{_wrap(x.body, subst)} if {_wrap(x.test, subst)} else {_wrap(x.orelse, subst)}"
    if isinstance(x, Const):
        if isinstance(x.value, str):
            return repr(x.value) if not x.parts else "f" + repr(x.value)
        return "..." if x.value is Ellipsis else repr(x.value)
    if isinstance(x, Seq) and x.kind == "dict":
        pairs = [f"{_render(k, subst)}: {_render(v, subst)}" for k, v in zip(x.items[::2], x.items[1::2])]
        return "{" + ", ".join(pairs) + "}"
    if isinstance(x, Seq):
        inner = ", ".join(_render(i, subst) for i in x.items)
        return {"tuple": f"({inner})", "list": f"[{inner}]", "set": f"{{{inner}}}", "dict": f"{{{inner}}}"}[x.kind]
    if isinstance(x, Comp):
        return f"[{_render(x.elts[0], subst)} for …]"
    if isinstance(x, Lambda):
        return "lambda"
    if isinstance(x, Other):
        if x.kind == "starred":
            return "*" + ", ".join(_render(p, subst) for p in x.parts)
        return ", ".join(_render(p, subst) for p in x.parts)
    return "?"


def _wrap(x: X | None, subst: dict[str, str], unary: bool = False) -> str:
    text = _render(x, subst)
    if isinstance(x, (BinOp, BoolOp, Compare, IfExpr, Lambda)) or (unary and isinstance(x, UnOp)):
        return f"({text})"
    return text

"""The module model the rules query: files, functions, classes, name resolution, the call
graph and reachability.

Everything is derived from the ``FileIR`` objects the builder produced in its single walk.
Name resolution uses each file's own import aliases (``import torch.nn.functional as F``
makes ``F.cross_entropy`` read as ``torch.nn.functional.cross_entropy``) and a small table
of local definitions; no libcst metadata provider is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

from . import ir
from .api import Site
from .flags import Definitions
from .patterns import UNRESOLVED_METHODS


@dataclass
class Resolved:
    kind: str                       # "function" or "class"
    target: ir.FunctionIR | ir.ClassIR
    bound: bool = False             # a method called on an instance (its first parameter is self)


def module_name(path: str) -> str:
    name = path[:-3] if path.endswith(".py") else path
    return name.replace("/", ".")


class Program:
    def __init__(self, files: list[ir.FileIR], folder_files: frozenset[str] = frozenset()):
        self.files = files
        self.entry = files[0]
        self.folder_files = folder_files
        self.functions: list[ir.FunctionIR] = []
        for f in files:
            self.functions.append(f.module_func)
            self.functions.extend(f.functions)
        self._top_functions: dict[tuple[str, str], ir.FunctionIR] = {}
        self._classes: dict[tuple[str, str], ir.ClassIR] = {}
        self._modules: dict[str, ir.FileIR] = {}
        self.methods_by_name: dict[str, list[ir.FunctionIR]] = {}
        self.classes_by_name: dict[str, list[ir.ClassIR]] = {}
        for f in files:
            self._modules[module_name(f.path)] = f
            for func in f.functions:
                if func.cls is None and func.parent is None:
                    self._top_functions.setdefault((f.path, func.name), func)
                if func.cls is not None:
                    self.methods_by_name.setdefault(func.name, []).append(func)
            for name, cls in f.classes.items():
                self._classes[(f.path, name)] = cls
                self.classes_by_name.setdefault(name, []).append(cls)
        self.defs = Definitions(files, self.qualify)
        self._resolve_cache: dict[int, Resolved | None] = {}

    # ---- names
    def qualify(self, x: ir.X | None, func: ir.FunctionIR | None) -> str | None:
        """Dotted name of a Name/Attr chain with the file's import aliases applied."""
        parts: list[str] = []
        while isinstance(x, ir.Attr):
            parts.append(x.attr)
            x = x.base
        if not isinstance(x, ir.Name):
            return None
        head = x.id
        if func is not None:
            head = func.file.aliases.get(head, head)
        parts.append(head)
        return ".".join(reversed(parts))

    def enclosing_class(self, func: ir.FunctionIR) -> ir.ClassIR | None:
        f: ir.FunctionIR | None = func
        while f is not None:
            if f.cls is not None:
                return f.cls
            f = f.parent
        return None

    def class_method(self, cls: ir.ClassIR, name: str, depth: int = 0) -> ir.FunctionIR | None:
        if name in cls.methods:
            return cls.methods[name]
        if depth > 5:
            return None
        for base in cls.bases:
            if isinstance(base, ir.Name):
                for other in self.classes_by_name.get(base.id, []):
                    found = self.class_method(other, name, depth + 1)
                    if found is not None:
                        return found
        return None

    def _lookup(self, func: ir.FunctionIR, name: str) -> Resolved | None:
        f: ir.FunctionIR | None = func
        while f is not None:
            for nested in f.nested:
                if nested.name == name:
                    return Resolved("function", nested)
            f = f.parent
        top = self._top_functions.get((func.file.path, name))
        if top is not None:
            return Resolved("function", top)
        cls = self._classes.get((func.file.path, name))
        if cls is not None:
            return Resolved("class", cls)
        qual = func.file.aliases.get(name)
        if qual is not None:
            return self._resolve_qual(qual)
        return None

    def _resolve_qual(self, qual: str) -> Resolved | None:
        module, _, name = qual.lstrip(".").rpartition(".")
        f = self._modules.get(module)
        if f is None or not name:
            return None
        top = self._top_functions.get((f.path, name))
        if top is not None:
            return Resolved("function", top)
        cls = self._classes.get((f.path, name))
        if cls is not None:
            return Resolved("class", cls)
        return None

    def resolve(self, call: ir.Call, func: ir.FunctionIR) -> Resolved | None:
        """The local function or class a call reaches, if the code defines it."""
        key = id(call)
        if key in self._resolve_cache:
            return self._resolve_cache[key]
        found = self._resolve(call.func, func)
        self._resolve_cache[key] = found
        return found

    def _resolve(self, fx: ir.X, func: ir.FunctionIR) -> Resolved | None:
        if isinstance(fx, ir.Name):
            return self._lookup(func, fx.id)
        if not isinstance(fx, ir.Attr):
            return None
        method = fx.attr
        base = fx.base
        if isinstance(base, ir.Name) and base.id in ("self", "cls"):
            cls = self.enclosing_class(func)
            if cls is not None:
                found = self.class_method(cls, method)
                if found is not None:
                    return Resolved("function", found, bound=True)
        qual = self.qualify(fx, func)
        if qual is not None and "." in qual:
            found = self._resolve_qual(qual)
            if found is not None:
                return found
        if isinstance(base, ir.Name):
            local = self._lookup(func, base.id)
            if local is not None and local.kind == "class":
                m = self.class_method(local.target, method)  # type: ignore[arg-type]
                if m is not None:
                    return Resolved("function", m)
        if method in UNRESOLVED_METHODS or method.startswith("__"):
            return None
        candidates = self.methods_by_name.get(method, [])
        if len(candidates) == 1:
            return Resolved("function", candidates[0], bound=True)
        return None

    # ---- call graph and reachability
    @cached_property
    def callees(self) -> dict[ir.FunctionIR, list[ir.FunctionIR]]:
        graph: dict[ir.FunctionIR, list[ir.FunctionIR]] = {}
        for func in self.functions:
            out: list[ir.FunctionIR] = []
            for call, _stmt in func.calls:
                r = self.resolve(call, func)
                if r is None:
                    continue
                if r.kind == "function":
                    out.append(r.target)  # type: ignore[arg-type]
                else:
                    out.extend(r.target.methods.values())  # type: ignore[union-attr]
            # functions and classes referenced without a call (hooks, callbacks, classes
            # passed around) may still run
            for name in func.name_refs:
                r = self._lookup(func, name)
                if r is None:
                    continue
                if r.kind == "function":
                    out.append(r.target)  # type: ignore[arg-type]
                else:
                    out.extend(r.target.methods.values())  # type: ignore[union-attr]
            out.extend(func.nested)
            graph[func] = list(dict.fromkeys(out))
        return graph

    @cached_property
    def callers(self) -> dict[ir.FunctionIR, list[tuple[ir.FunctionIR, ir.Call, ir.S | None]]]:
        """For each function, the calls that reach it (also constructor calls for methods)."""
        sites: dict[ir.FunctionIR, list[tuple[ir.FunctionIR, ir.Call, ir.S | None]]] = {}
        for func in self.functions:
            for call, stmt in func.calls:
                r = self.resolve(call, func)
                if r is None:
                    continue
                targets = [r.target] if r.kind == "function" else list(r.target.methods.values())  # type: ignore
                for t in targets:
                    sites.setdefault(t, []).append((func, call, stmt))
        return sites

    @cached_property
    def reachable(self) -> set[ir.FunctionIR]:
        """Functions that can run: from every file's module-level code through calls and
        references (a helper module runs when imported)."""
        seen: set[ir.FunctionIR] = set()
        stack = [f.module_func for f in self.files]
        while stack:
            func = stack.pop()
            if func in seen:
                continue
            seen.add(func)
            stack.extend(self.callees.get(func, ()))
        return seen

    def bottom_up(self) -> list[ir.FunctionIR]:
        """Every function, callees before callers (cycles broken arbitrarily). Functions no
        code reaches are analysed too: their findings are reported as information."""
        order: list[ir.FunctionIR] = []
        state: dict[ir.FunctionIR, int] = {}
        for root in [f.module_func for f in self.files] + self.functions:
            if root in state:
                continue
            stack: list[tuple[ir.FunctionIR, Iterator[ir.FunctionIR]]] = [(root, iter(self.callees.get(root, ())))]
            state[root] = 1
            while stack:
                func, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[func] = 2
                    order.append(func)
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(self.callees.get(nxt, ()))))
        return order

    # ---- per-function helpers (flow-insensitive)
    def statements(self, func: ir.FunctionIR) -> list[ir.S]:
        """Every statement of the function (not of nested functions), cached."""
        cached = getattr(func, "_statements", None)
        if cached is None:
            cached = func._statements = list(ir.walk_statements(func.body))  # type: ignore[attr-defined]
        return cached

    def expressions(self, func: ir.FunctionIR) -> list[tuple[ir.S, ir.X]]:
        """Every expression node of the function with its statement, cached: the rules
        scan this one list instead of walking the model again."""
        cached = getattr(func, "_expressions", None)
        if cached is None:
            cached = [(s, x) for s in self.statements(func) for top in ir.statement_exprs(s) for x in ir.walk(top)]
            func._expressions = cached  # type: ignore[attr-defined]
        return cached

    def local_info(self, func: ir.FunctionIR) -> "LocalInfo":
        info = getattr(func, "_local_info", None)
        if info is None:
            info = LocalInfo(self, func)
            func._local_info = info  # type: ignore[attr-defined]
        return info


class LocalInfo:
    """Def-use facts of one function, ignoring order: which names feed which, which names
    are optimised tensors, which flow into what the function reports."""

    def __init__(self, program: Program, func: ir.FunctionIR):
        self.func = func
        self.deps: dict[str, set[str]] = {}        # name -> names its values are computed from
        self.users: dict[str, set[str]] = {}       # name -> names computed from it
        self.defs: dict[str, list[ir.X]] = {}      # name -> assigned expressions
        self.assigned: set[str] = set()
        self.slot_tensors: set[str] = set()        # tensors created with requires_grad=True here
        self.sinks: set[str] = set()               # names returned or printed with a metric
        self.backward_names: set[str] = set()      # names `.backward()` is called on
        self.accumulated: set[str] = set()         # containers grown in place (`x += v`, `x.append(v)`)
        for s in ir.walk_statements(func.body):
            if isinstance(s, ir.Assign):
                value_names = set(s.value.names) if s.value is not None else set()
                for t in s.targets:
                    if s.op is not None:
                        c = container_name(t)
                        if c:
                            self.accumulated.add(c)
                    tnames = _target_names(t)
                    for tn in tnames:
                        self.assigned.add(tn)
                        self.deps.setdefault(tn, set()).update(value_names | ({tn} if s.op else set()))
                        if s.value is not None:
                            self.defs.setdefault(tn, []).append(s.value)
                    if isinstance(t, (ir.Sub, ir.Attr)):
                        # writing into a container: the container depends on the value
                        base = _base_name(t)
                        if base:
                            self.deps.setdefault(base, set()).update(value_names)
                    if s.value is not None and _creates_slot_tensor(s.value):
                        self.slot_tensors.update(tnames)
                    if isinstance(t, ir.Attr) and t.attr == "requires_grad" and isinstance(s.value, ir.Const) \
                            and s.value.value is True and isinstance(t.base, ir.Name):
                        self.slot_tensors.add(t.base.id)
            elif isinstance(s, ir.Loop) and s.target is not None:
                for tn in _target_names(s.target):
                    self.assigned.add(tn)
                    self.deps.setdefault(tn, set()).update(s.iter.names if s.iter is not None else ())
                    if s.iter is not None:
                        self.defs.setdefault(tn, []).append(s.iter)
            elif isinstance(s, ir.With):
                for item, alias in s.items:
                    if alias is not None:
                        for tn in _target_names(alias):
                            self.assigned.add(tn)
                            self.deps.setdefault(tn, set()).update(item.names)
            elif isinstance(s, ir.Return) and s.value is not None:
                self.sinks.update(s.value.names)
            elif isinstance(s, ir.Def):
                self.assigned.add(s.func.name)
            if isinstance(s, ir.ExprS):
                for x in ir.walk(s.value):
                    if isinstance(x, ir.Call) and isinstance(x.func, ir.Attr):
                        base = _base_name(x.func.base)
                        if x.func.attr == "requires_grad_" and base:
                            self.slot_tensors.add(base)
                        if x.func.attr in ("append", "extend", "add_", "copy_", "update", "add") and base:
                            self.accumulated.add(base)
                            for a in x.args:
                                self.deps.setdefault(base, set()).update(a.names)
                    # torch.save(obj, buffer), np.save(buffer, obj): the buffer holds obj
                    if isinstance(x, ir.Call) and isinstance(x.func, ir.Attr) and x.func.attr in ("save", "dump") \
                            and len(x.args) >= 2:
                        for a in x.args:
                            target = _base_name(a)
                            if target:
                                others = set().union(*(b.names for b in x.args if b is not a))
                                self.deps.setdefault(target, set()).update(others)
                                self.defs.setdefault(target, []).append(x)
            for x in _statement_calls(s):
                if isinstance(x.func, ir.Attr) and x.func.attr == "backward":
                    self.backward_names.update(x.func.base.names)
                fname = ""
                if isinstance(x.func, ir.Name):
                    fname = x.func.id
                elif isinstance(x.func, ir.Attr):
                    fname = x.func.attr
                if any(k in fname.lower() for k in ("log", "print", "info", "write")):
                    texts = [a.value for a in x.args if isinstance(a, ir.Const) and isinstance(a.value, str)]
                    if any(("bpb" in t or "loss" in t or "nll" in t) for t in texts):
                        for a in x.args:
                            self.sinks.update(a.names)
        for name, ds in self.deps.items():
            for d in ds:
                self.users.setdefault(d, set()).add(name)

    def trains_on(self, name: str) -> bool:
        """Whether a value computed from ``name`` is back-propagated."""
        if not self.backward_names:
            return False
        return name in self.closure_back(self.backward_names)

    def closure_back(self, names, limit: int = 400) -> set[str]:
        return _closure(names, self.deps, limit)

    def closure_forward(self, names, limit: int = 400) -> set[str]:
        return _closure(names, self.users, limit)


def _creates_slot_tensor(value: ir.X) -> bool:
    for x in ir.walk(value):
        if isinstance(x, ir.Call):
            rg = x.kwargs.get("requires_grad")
            if isinstance(rg, ir.Const) and rg.value is True:
                return True
            if isinstance(x.func, ir.Attr) and x.func.attr == "requires_grad_":
                return True
    return False


def _statement_calls(s: ir.S) -> Iterator[ir.Call]:
    for x in ir.statement_exprs(s):
        for y in ir.walk(x):
            if isinstance(y, ir.Call):
                yield y


def _target_names(t: ir.X) -> list[str]:
    if isinstance(t, ir.Name):
        return [t.id]
    if isinstance(t, ir.Seq):
        out: list[str] = []
        for item in t.items:
            out.extend(_target_names(item))
        return out
    if isinstance(t, ir.Other) and t.kind == "starred":
        out = []
        for p in t.parts:
            out.extend(_target_names(p))
        return out
    return []


def _base_name(x: ir.X | None) -> str | None:
    """The variable at the bottom of ``a.b[c].d``."""
    while isinstance(x, (ir.Attr, ir.Sub)):
        x = x.base
    return x.id if isinstance(x, ir.Name) else None


def target_names(t: ir.X) -> list[str]:
    return _target_names(t)


def base_name(x: ir.X | None) -> str | None:
    return _base_name(x)


def container_name(x: ir.X | None) -> str | None:
    """The name a store goes into: ``loss_sum`` for ``loss_sum``, ``self.loss_sum`` and
    ``loss_sum[i]``; the attribute name for ``self.counts[k]``."""
    while isinstance(x, ir.Sub):
        x = x.base
    if isinstance(x, ir.Attr):
        return x.attr
    if isinstance(x, ir.Name):
        return x.id
    return None


def bind_arguments(call: ir.Call, callee: ir.FunctionIR, bound: bool
                   ) -> tuple[dict[str, ir.X | None], str | None, bool]:
    """Which argument expression fills each named parameter of ``callee`` at ``call``: the
    binding, the parameter the receiver fills (``self`` of a method called on an instance,
    bound to the receiver expression), and whether the binding is complete (no starred
    argument stopped it, no positional argument went past the named parameters)."""
    positional = [p for p in callee.params if not p.startswith("*")]
    binding: dict[str, ir.X | None] = {}
    receiver = None
    offset = 0
    if bound and positional and positional[0] in ("self", "cls"):
        receiver = positional[0]
        binding[receiver] = call.func.base if isinstance(call.func, ir.Attr) else None
        offset = 1
    complete = len(call.args) + offset <= len(positional)
    for i, ax in enumerate(call.args):
        if isinstance(ax, ir.Other) and ax.kind == "starred":
            complete = False
            break
        if i + offset < len(positional):
            binding[positional[i + offset]] = ax
    for k, v in call.kwargs.items():
        if k in positional:
            binding[k] = v
    return binding, receiver, complete


def _closure(names, edges: dict, limit: int) -> set[str]:
    """Every name reachable from ``names`` along ``edges``, stopping past ``limit`` names."""
    seen = set(names)
    stack = list(names)
    while stack and len(seen) < limit:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen

"""The token being scored, and tables read with it.

An n-gram mixer reads count tables at scoring time. Whether that is legal depends on the
key: a key built from the prefix (`tokens[p - n:p]`) gives a distribution the model could
have had before seeing the target; a key that contains the target (`hash(ctx) ^ tgt *
PRIME`, `counts[ctx][y]`) reads a "probability" of the realized token only, and a gate
read at the target (`is_ws[tokens[p]]`) decides the mixture from the answer.

Per function, this module finds:

* the **target**: variables named like it (`y`, `tgt`, `targets`, ...) and positional
  reads of a token stream at the scored position. Within one stream and one position
  variable, the largest offset read is the scored position (`tokens[p]` next to
  `tokens[p - 1]` makes `p` the target; `tokens[i + 1]` next to `tokens[i]` makes `i + 1` the
  target); a slice whose end passes the target includes it;
* values **computed from** the target (flow-insensitive, through assignments);
* **table reads** whose index is computed from the target: count tables (incremented
  somewhere in the code, or named like counts/tables/caches) and property tables (`is_ws`,
  `is_boundary`), excluding the model's own distribution (logits, probs) and the byte
  lookup tables of the bpb denominator. A read indexed by the target itself (renamed,
  converted, one element of the targets), alone or beside a target-free context
  (`uni[y]`, `counts[prev, y]`), is marked ``target_dimension``: it reads a row over the
  vocabulary at the target, which is how any distribution is scored; a key that mixes the
  target into the context (`hash(ctx) ^ tgt * P`) is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from . import ir
from .patterns import (
    BYTE_RE, COUNT_TABLE_RE, DISTRIBUTION_RE, GATE_RE, TARGET_NAME_RE, TOKEN_STREAM_NAME_RE, TOKEN_STREAM_RE, VAL_NAME_RE,
)
from .program import LocalInfo, Program, Site, bind_arguments, container_name, target_names

_PROB_SINK_RE = re.compile(r"^p(?:_|$)|prob|mix|blend|nll|loss|logp|log_p|lp$|score|bits|^q(?:_|$)", re.I)
_LOG_CALLS = {"log", "log2", "log1p", "log_softmax"}
# methods that convert a tensor without changing which token it holds
_CONVERSIONS = {"long", "int", "item", "tolist", "cpu", "cuda", "clone", "detach", "flatten", "reshape", "view",
                "astype", "to", "type", "contiguous", "numpy", "squeeze", "unsqueeze"}


@dataclass
class TableRead:
    site: Site
    sub: ir.X              # the subscript (or .get call) reading the table
    table: str
    kind: str              # "count" or "property"
    key: str               # rendered index
    # the index parts that involve the target are the target itself (`uni[y]`,
    # `counts[prev, y]`, `table[ctx][tgt]`): a row over the vocabulary read at the target,
    # as a model's distribution is; not a key that mixes the target into the context
    target_dimension: bool = False


class TokenFacts:
    def __init__(self, program: Program, func: ir.FunctionIR, count_tables: frozenset[str]):
        self.program = program
        self.func = func
        self.info: LocalInfo = program.local_info(func)
        self.count_tables = count_tables
        self.target_subs: set[int] = set()
        self._find_target_positions()
        self.tainted = self._taint()

    # -- the target
    def _find_target_positions(self) -> None:
        groups: dict[tuple[str, str], list[tuple[ir.Sub, int, bool]]] = {}
        for _s, x in self.program.expressions(self.func):
            if not isinstance(x, ir.Sub) or not isinstance(x.base, ir.Name) or len(x.index) != 1:
                continue
            base = x.base.id
            if not (TOKEN_STREAM_RE.search(base) or VAL_NAME_RE.match(base)) or base in self.count_tables \
                    or DISTRIBUTION_RE.search(base):
                continue
            part = x.index[0]
            if isinstance(part, ir.Slice):
                stop = _offset(part.upper)
                if stop is not None:
                    groups.setdefault((base, stop[0]), []).append((x, stop[1] - 1, True))
            else:
                pos = _offset(part)
                if pos is not None:
                    groups.setdefault((base, pos[0]), []).append((x, pos[1], False))
        for (base, _var), reads in groups.items():
            scalars = [off for _x, off, is_slice in reads if not is_slice]
            if not scalars:
                continue  # only context slices: nothing is read at a single position
            if len({off for _x, off, _s in reads}) < 2 and not (TOKEN_STREAM_NAME_RE.match(base) or VAL_NAME_RE.match(base)):
                continue  # one position of a container that is not named as a stream: no context read shows it is one
            target = max(off for _x, off, _s in reads)
            if max(scalars) < 0 and target < 0:
                continue  # only earlier positions are read here
            for x, off, _is_slice in reads:
                if off >= target:
                    self.target_subs.add(id(x))

    def _is_target_expr(self, x: ir.X) -> bool:
        if value_names(x) & self.tainted:
            return True
        if not self.target_subs:
            return False
        return any(id(y) in self.target_subs for y in ir.walk(x))

    def _taint(self) -> set[str]:
        """Names holding the target token's value: target-named variables, the target
        argument of the loss, and what is computed from them. Positions are kept apart from
        values: the index of ``enumerate``, a ``range`` loop variable and sizes (``len``,
        ``.size()``, ``.numel()``, ``.shape``) never carry a token's value."""
        tainted: set[str] = set()
        params = {p.lstrip("*") for p in self.func.params}
        names = set(self.info.assigned) | params | set(self.func.name_refs)
        for n in names:
            if TARGET_NAME_RE.match(n) and not (n not in params and self.info.defs.get(n)
                                                and all(_quotient(v) for v in self.info.defs[n])):
                tainted.add(n)
        tainted |= loss_target_names(self.program, self.func)
        positions = loop_positions(self.func)
        unpacked = _unpacked_results(self.program, self.func)
        self.tainted = tainted
        changed = True
        while changed:
            changed = False
            for name, values in self.info.defs.items():
                if name in tainted or name in positions:
                    continue
                if any(self._unpacked_from_target(unpacked[(name, id(v))]) if (name, id(v)) in unpacked
                       else self._is_target_expr(v) for v in values):
                    tainted.add(name)
                    changed = True
        return tainted

    def _unpacked_from_target(self, arguments: list[ir.X]) -> bool:
        return any(self._is_target_expr(a) for a in arguments)

    # -- table reads
    @cached_property
    def reads(self) -> list[TableRead]:
        out: list[TableRead] = []
        if not self.tainted and not self.target_subs:
            return out
        for s, x in self.program.expressions(self.func):
            if isinstance(s, ir.Assign) and any(x is t for t in s.targets):
                continue  # the store itself (its index parts are still reads)
            read = self._read(x)
            if read is None:
                continue
            table, index = read
            kind = self._table_kind(table)
            if kind is None or not any(self._is_target_expr(i) for i in index):
                continue
            key = ", ".join(ir.render(i, limit=60) for i in index)
            out.append(TableRead(Site(self.func, s, x), x, table, kind, key, self._target_dimension(x, index)))
        return out

    def _target_dimension(self, x: ir.X, index: list[ir.X]) -> bool:
        if not isinstance(x, ir.Sub):
            return False  # a `.get` key (a tuple or a hash)
        keyed = [i for i in index if self._is_target_expr(i)]
        return bool(keyed) and all(self._is_target_value(i) for i in keyed)

    def _is_target_value(self, x: ir.X, depth: int = 0) -> bool:
        """``x`` is the target token itself (or a plain conversion of it), not a value
        computed from it together with other data."""
        if depth > 12:  # a chain of renames and conversions; also ends `y = y.long()` loops
            return False
        if id(x) in self.target_subs:
            return True
        if isinstance(x, ir.Call) and isinstance(x.func, ir.Attr) and x.func.attr in _CONVERSIONS \
                and not any(self._is_target_expr(a) for a in [*x.args, *x.kwargs.values()]):
            return self._is_target_value(x.func.base, depth + 1)
        if isinstance(x, ir.Sub) and not any(self._is_target_expr(i) for i in x.index):
            return self._is_target_value(x.base, depth + 1)  # one element of the targets (`ys[j]`)
        if isinstance(x, ir.Call) and isinstance(x.func, ir.Name) and x.func.id in ("int", "long") and len(x.args) == 1:
            return self._is_target_value(x.args[0], depth + 1)
        if isinstance(x, ir.Name) and x.id in self.tainted:
            # the values assigned to it; a tuple display is an unpacking (`prev, tgt = xb[...],
            # yb[...]`) whose element for this name is not recorded, and an allocation
            # (`torch.zeros(...)`) is filled by element writes: neither decides anything
            defs = [v for v in self.info.defs.get(x.id, ())
                    if not (isinstance(v, ir.Seq) and v.kind == "tuple") and not _allocation(v)]
            if not defs:
                return True  # a parameter, an unpacked or a target-named variable the function does not compute
            return all(self._is_target_value(v, depth + 1) for v in defs)
        return False

    def _read(self, x: ir.X) -> tuple[str, list[ir.X]] | None:
        if isinstance(x, ir.Sub):
            if id(x) in self.target_subs:
                return None
            name = container_name(x.base) if isinstance(x.base, (ir.Name, ir.Attr, ir.Sub)) else None
            index = list(x.index)
            # counts[k][key]: the table is the outer name, every index level counts
            base = x.base
            while isinstance(base, ir.Sub):
                index = list(base.index) + index
                base = base.base
            return (name, index) if name else None
        if isinstance(x, ir.Call) and isinstance(x.func, ir.Attr) and x.func.attr == "get" and x.args:
            name = container_name(x.func.base)
            return (name, [x.args[0]]) if name else None
        return None

    def _table_kind(self, table: str) -> str | None:
        if table in self.count_tables:
            return "count"
        if DISTRIBUTION_RE.search(table) or BYTE_RE.search(table) or TOKEN_STREAM_RE.search(table) \
                or TARGET_NAME_RE.match(table) or table in self.tainted:
            return None  # the model's or a normalised distribution, bytes, the token stream
        if COUNT_TABLE_RE.search(table):
            return "count"
        return "property"

    # -- where a value goes
    def outputs(self, site: Site) -> set[str]:
        s = site.stmt
        names: set[str] = set()
        if isinstance(s, ir.Assign):
            for t in s.targets:
                names.update(target_names(t))
                if isinstance(t, (ir.Attr, ir.Sub)):
                    c = container_name(t)
                    if c:
                        names.add(c)
        return names

    def reaches_score(self, read: TableRead) -> bool:
        s = read.site.stmt
        if isinstance(s, ir.Return):
            return True
        if isinstance(s, ir.Assign) and s.op is None and any(
                isinstance(t, ir.Sub) and container_name(t) == read.table for t in s.targets):
            return False  # the update side: `table[key] = table[key] + 1`
        if isinstance(s, ir.Assign) and s.op is not None and any(container_name(t) == read.table for t in s.targets):
            return False
        top = s.value if isinstance(s, (ir.Assign, ir.ExprS)) else None
        if top is not None and _inside_log(top, read.sub):
            return True
        outs = self.outputs(read.site)
        forward = self.info.closure_forward(outs)
        if forward & self.info.sinks:
            return True
        return any(_PROB_SINK_RE.search(n) for n in forward)

    @cached_property
    def tests(self) -> set[str]:
        """Names used in conditions that choose between computations."""
        names: set[str] = set()
        for s in self.program.statements(self.func):
            if isinstance(s, ir.If) and not _records_only(s):
                names |= s.test.names
        for _s, x in self.program.expressions(self.func):
            if isinstance(x, ir.Call) and isinstance(x.func, (ir.Attr, ir.Name)) and (
                    (x.func.attr if isinstance(x.func, ir.Attr) else x.func.id) == "where") and x.args:
                names |= x.args[0].names
            elif isinstance(x, ir.IfExpr):
                names |= x.test.names
        return names

    def gate_sink(self, read: TableRead) -> tuple[bool, str]:
        """Whether the read decides a gate or a mixing weight, and the variable that carries
        it ("" when the read sits in the condition itself)."""
        outs = self.outputs(read.site)
        s = read.site.stmt
        if isinstance(s, ir.If) or (isinstance(s, ir.Flow) and s.kind == "assert"):
            # a condition of the table update (`if pair_count > best_count: best = tgt`) is
            # bookkeeping after scoring, not a gate of the scored distribution
            return isinstance(s, ir.If) and not _byte_body(s) and not _state_update_body(s), ""
        if outs and all(BYTE_RE.search(n) for n in outs):
            return False, ""
        for n in sorted(outs):
            if GATE_RE.search(n) and not BYTE_RE.search(n):
                return True, n
        if s is not None and _inside_condition(s, read.sub):
            return True, ""
        forward = self.info.closure_forward(outs) - outs
        for n in sorted(forward):
            if GATE_RE.search(n) and not BYTE_RE.search(n):
                if read.target_dimension and _PROB_SINK_RE.search(n):
                    # the distribution's value at the target flowing into the mixed
                    # probability (`mix_p = (1 - a) * p + a * cache_p`) is what is scored
                    continue
                return True, n
        in_tests = sorted((outs | forward) & self.tests)
        if in_tests:
            # the variable the condition tests, nearest to the read first
            direct = [n for n in in_tests if n in outs]
            return True, (direct or [n for n in in_tests if self.info.deps.get(n, set()) & outs] or in_tests)[0]
        return False, ""

    def assignment_site(self, name: str, after: Site) -> Site | None:
        """The statement that assigns ``name`` (the first one after ``after`` if any)."""
        found = None
        passed = False
        for s in ir.walk_statements(self.func.body):
            if s is after.stmt:
                passed = True
            if isinstance(s, ir.Assign) and any(name in target_names(t) for t in s.targets):
                if passed:
                    return Site(self.func, s)
                found = found or Site(self.func, s)
        return found

    def weights(self, names: set[str]) -> list[ir.X]:
        """Factors multiplied with these variables (or in their definitions): a zero factor
        switches the gate off."""
        out: list[ir.X] = []
        for _s, x in self.program.expressions(self.func):
            if isinstance(x, ir.BinOp) and x.op == "*":
                for this, other in ((x.left, x.right), (x.right, x.left)):
                    if this.names & names and isinstance(other, (ir.Name, ir.Attr)) \
                            and not (other.names & self.tainted):
                        out.append(other)
        for n in names:
            for value in self.info.defs.get(n, ()):
                for x in ir.walk(value):
                    if isinstance(x, ir.BinOp) and x.op == "*":
                        for side in (x.left, x.right):
                            if isinstance(side, (ir.Name, ir.Attr)) and not (side.names & self.tainted):
                                out.append(side)
        return out


_SIZE_CALLS = frozenset({"len", "size", "numel", "dim", "range"})
_SIZE_ATTRS = frozenset({"shape", "ndim", "dtype", "device"})


def _unpacked_results(program: Program, func: ir.FunctionIR) -> dict[tuple[str, int], list[ir.X]]:
    """`probs, matched, orders = cache.lookup(tokens, positions, targets)` with a local callee
    that returns a tuple: for each unpacked name (and the call), the arguments its element
    is computed from. A lookup that takes the targets to read the probability still returns
    a match mask computed from the context only."""
    out: dict[tuple[str, int], list[ir.X]] = {}
    for s in ir.walk_statements(func.body):
        if not (isinstance(s, ir.Assign) and s.op is None and isinstance(s.value, ir.Call) and len(s.targets) == 1):
            continue
        target = s.targets[0]
        if not (isinstance(target, ir.Seq) and target.kind == "tuple" and all(isinstance(t, ir.Name) for t in target.items)):
            continue
        resolved = program.resolve(s.value, func)
        if resolved is None or resolved.kind != "function":
            continue
        callee = resolved.target
        per_element = _result_parameters(callee)
        bound = _bind(s.value, callee, resolved.bound)
        if per_element is None or len(per_element) != len(target.items) or bound is None:
            continue
        for item, params in zip(target.items, per_element):
            out[(item.id, id(s.value))] = [bound[p] for p in params if p in bound]
    return out


def _bind(call: ir.Call, callee: ir.FunctionIR, bound: bool) -> dict[str, ir.X] | None:
    """The callee's parameters and the argument expressions that fill them (the receiver
    left out), or None when starred or surplus arguments leave the binding open."""
    binding, receiver, complete = bind_arguments(call, callee, bound)
    if not complete:
        return None
    return {p: x for p, x in binding.items() if p != receiver and x is not None}


def _result_parameters(callee: ir.FunctionIR) -> list[set[str]] | None:
    """Per element of the tuple the function returns, the parameters the element's value is
    computed from (order ignored; a store into a container makes it depend on the index
    and the value). None unless every return is a tuple of one length."""
    cached = getattr(callee, "_result_parameters", False)
    if cached is not False:
        return cached
    elements: list[set[str]] | None = None
    deps: dict[str, set[str]] = {}
    for st in ir.walk_statements(callee.body):
        if isinstance(st, ir.Return):
            value = st.value
            if not (isinstance(value, ir.Seq) and value.kind == "tuple"):
                elements = None
                break
            if elements is None:
                elements = [set(item.names) for item in value.items]
            elif len(elements) != len(value.items):
                elements = None
                break
            else:
                for k, item in enumerate(value.items):
                    elements[k] |= set(item.names)
        elif isinstance(st, ir.Assign):
            value_names = set(st.value.names) if st.value is not None else set()
            for t in st.targets:
                for n in target_names(t):
                    deps.setdefault(n, set()).update(value_names | (set(t.names) - {n}) | ({n} if st.op else set()))
                if isinstance(t, (ir.Sub, ir.Attr)):
                    base = container_name(t)
                    if base:
                        deps.setdefault(base, set()).update(value_names | set(t.names))
        elif isinstance(st, ir.Loop) and st.target is not None and st.iter is not None:
            for n in target_names(st.target):
                deps.setdefault(n, set()).update(st.iter.names)
    result = None
    if elements is not None:
        params = {p.lstrip("*") for p in callee.params}
        result = []
        for names in elements:
            seen, todo = set(), list(names)
            while todo:
                n = todo.pop()
                if n in seen:
                    continue
                seen.add(n)
                todo.extend(deps.get(n, ()))
            result.append(seen & params)
    callee._result_parameters = result  # type: ignore[attr-defined]
    return result


def value_names(x: ir.X) -> set[str]:
    """The names whose value ``x`` carries: not those it only measures (``len(tokens)``,
    ``tokens.size(0)``, ``tokens.shape``)."""
    out: set[str] = set()
    stack = [x]
    while stack:
        y = stack.pop()
        if isinstance(y, ir.Call):
            name = ir.call_name(y)
            if name in _SIZE_CALLS:
                continue
        elif isinstance(y, ir.Attr) and y.attr in _SIZE_ATTRS:
            continue
        elif isinstance(y, ir.Name):
            out.add(y.id)
            continue
        if not isinstance(y, ir.Lambda):
            stack.extend(y.children())
    return out


def loop_positions(func: ir.FunctionIR) -> set[str]:
    """Loop variables that are positions, not token values: ``i`` in ``for i, w in
    enumerate(ws)`` and ``p`` in ``for p in range(n)``."""
    out: set[str] = set()
    for s in ir.walk_statements(func.body):
        if not isinstance(s, ir.Loop) or s.kind != "for" or s.target is None or not isinstance(s.iter, ir.Call):
            continue
        f = s.iter.func
        name = f.id if isinstance(f, ir.Name) else (f.attr if isinstance(f, ir.Attr) else "")
        if name == "range":
            out.update(target_names(s.target))
        elif name == "enumerate" and isinstance(s.target, ir.Seq) and s.target.items:
            out.update(target_names(s.target.items[0]))
    return out


_LOSS_TARGET_ARG = {"cross_entropy": (1, "target"), "nll_loss": (1, "target"), "CrossEntropyLoss": (1, "target")}


def loss_target_names(program: Program, func: ir.FunctionIR) -> set[str]:
    """Names passed as the target of a loss call in ``func`` (``F.cross_entropy(logits, y)``):
    what is scored, whatever it is called."""
    out: set[str] = set()
    for _s, x in program.expressions(func):
        if not isinstance(x, ir.Call):
            continue
        name = ir.call_name(x)
        spec = _LOSS_TARGET_ARG.get(name)
        if spec is None:
            continue
        arg = x.arg(*spec)
        if arg is None:
            continue
        # `y.reshape(-1)`, `y[:, s:]`: the name whose values are the targets
        base = arg
        while isinstance(base, (ir.Call, ir.Sub, ir.Attr)):
            if isinstance(base, ir.Call):
                if not isinstance(base.func, ir.Attr):
                    break
                base = base.func.base
            else:
                base = base.base
        if isinstance(base, ir.Name):
            out.add(base.id)
    return out


def _offset(x: ir.X | None) -> tuple[str, int] | None:
    """`p` -> (p, 0); `p + 2` -> (p, 2); `p - 1` -> (p, -1)."""
    if isinstance(x, ir.Name):
        return x.id, 0
    if isinstance(x, ir.BinOp) and x.op in ("+", "-") and isinstance(x.left, ir.Name) and isinstance(x.right, ir.Const) \
            and isinstance(x.right.value, int):
        return x.left.id, x.right.value if x.op == "+" else -x.right.value
    return None


_ALLOCATIONS = {"zeros", "empty", "ones", "full", "zeros_like", "empty_like", "ones_like", "full_like"}


def _allocation(x: ir.X) -> bool:
    """``torch.zeros(...)``, ``np.empty(...)``: a buffer whose content comes later."""
    if not isinstance(x, ir.Call):
        return False
    return ir.call_name(x) in _ALLOCATIONS


def _inside_log(top: ir.X, target: ir.X) -> bool:
    for x in ir.walk(top):
        if isinstance(x, ir.Call):
            name = ir.call_name(x)
            if name in _LOG_CALLS and any(y is target for a in x.args for y in ir.walk(a)):
                return True
    return False


def _inside_condition(s: ir.S, target: ir.X) -> bool:
    for top in ir.statement_exprs(s):
        for x in ir.walk(top):
            cond = None
            if isinstance(x, ir.Call) and isinstance(x.func, (ir.Attr, ir.Name)) and (
                    (x.func.attr if isinstance(x.func, ir.Attr) else x.func.id) == "where") and x.args:
                cond = x.args[0]
            elif isinstance(x, ir.IfExpr):
                cond = x.test
            if cond is not None and any(y is target for y in ir.walk(cond)):
                return True
    return False


def _quotient(x: ir.X) -> bool:
    """A true division (`batch * remaining / total`): a share, never a token id, whatever the
    variable is called (a loader's per-shard `target` quota)."""
    return isinstance(x, ir.BinOp) and x.op == "/"


def _records_only(s: ir.If) -> bool:
    """An `if` without `else` whose body only appends to lists (`touched.append((p, y))`):
    it notes what to update later and chooses between no computations."""
    if s.orelse or not s.body:
        return False
    for inner in s.body:
        if not (isinstance(inner, ir.ExprS) and isinstance(inner.value, ir.Call)
                and isinstance(inner.value.func, ir.Attr) and inner.value.func.attr in ("append", "extend", "add")):
            return False
    return True


def _state_update_body(s: ir.If) -> bool:
    """An `if` whose body only writes into tables or object state."""
    stores = [t for inner in ir.walk_statements(s.body) if isinstance(inner, ir.Assign) for t in inner.targets]
    return bool(stores) and all(isinstance(t, (ir.Sub, ir.Attr)) for t in stores)


def _byte_body(s: ir.If) -> bool:
    """An `if` whose body only counts bytes (the bpb denominator)."""
    names: set[str] = set()
    for inner in ir.walk_statements(s.body):
        if isinstance(inner, ir.Assign):
            for t in inner.targets:
                c = container_name(t)
                if c:
                    names.add(c)
    return bool(names) and all(BYTE_RE.search(n) for n in names)


def count_tables(program: Program) -> frozenset[str]:
    """Tables written by increments anywhere in the code (the analysis saw them as cache
    updates)."""
    names: set[str] = set()
    analysis = program.analysis  # type: ignore[attr-defined]
    for ev in analysis.all_events():
        if ev.kind != "cache" or ev.inner:
            continue
        x = ev.site.x
        if isinstance(x, ir.Sub):
            c = container_name(x)
            if c:
                names.add(c)
        elif isinstance(x, ir.Call):
            if x.args and isinstance(x.func, ir.Attr) and x.func.attr == "at":
                c = container_name(x.args[0])
            elif isinstance(x.func, ir.Attr):
                c = container_name(x.func.base)
            else:
                c = None
            if c:
                names.add(c)
    return frozenset(n for n in names if not BYTE_RE.search(n) and not re.search(r"hessian|grad|stat", n, re.I))


def token_facts(program: Program, func: ir.FunctionIR) -> TokenFacts:
    cache = getattr(program, "_token_facts", None)
    if cache is None:
        cache = program._token_facts = {}  # type: ignore[attr-defined]
        program._count_tables = count_tables(program)  # type: ignore[attr-defined]
    facts = cache.get(func)
    if facts is None:
        facts = cache[func] = TokenFacts(program, func, program._count_tables)  # type: ignore[attr-defined]
    return facts

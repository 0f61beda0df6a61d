"""Feature flags: which code paths the logged runs actually took.

Submissions gate their tricks on hyperparameters read from environment variables
(``ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))`` in a ``Hyperparameters``
class, a module constant, a local). The logs print the values used, either as a
``Hyperparameters:`` block (``  ngram_within_beta: 0.0``, the converted value) or as an env
dump (``NGRAM_WITHIN_BETA=0``, the raw string). This module evaluates guard conditions
(``if args.ngram_within_beta > 0:``) under each logged run, falling back to the code default
for values no log prints, and remembers which flags decided the outcome and where the log
shows them. Nothing is executed: a small evaluator understands constants, arithmetic,
comparisons, boolean logic, ``int``/``float``/``bool``/``str`` and environment reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from . import ir
from .ir import X

UNKNOWN = object()


class Opaque:
    """An object the evaluator cannot see into (a constructed module): truthy, not None."""

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<object>"


OPAQUE = Opaque()
_ENV_READS = {"os.environ.get", "os.getenv", "environ.get", "getenv", "os.environ.setdefault"}
_MAX_DEPTH = 10


@dataclass(frozen=True)
class FlagUse:
    """One flag read while evaluating a guard under one run."""

    key: str                 # the name the code assigns it to (attribute or variable)
    env: str | None          # the environment variable
    value: Any               # the value it had in that run
    source: str              # "log", "default" or "undecided" (a default the evaluator cannot compute)
    log: str | None = None   # log file that printed it
    line: int | None = None  # line in that log

    def describe(self) -> str:
        if self.source == "undecided":
            return f"{self.key} ({self.env} unset; its default is not decidable statically)"
        shown = f"{self.key}={self.value!r}" if not isinstance(self.value, str) else f"{self.key}={self.value}"
        if self.source == "log" and self.log:
            return f"{shown} at {self.log}:{self.line}" if self.line else f"{shown} in {self.log}"
        env = f" ({self.env} unset)" if self.env else ""
        return f"{shown} by the code default{env}"


@dataclass
class RunValues:
    """The hyperparameters one run printed: lowercase key -> (printed key, value text, line)."""

    label: str
    path: str | None
    values: dict[str, tuple[str, str, int | None]] = field(default_factory=dict)

    @classmethod
    def from_run(cls, run: Any) -> "RunValues":
        record = run.record
        lines = getattr(record, "hyperparameter_lines", {}) or {}
        values = {}
        for key, text in (getattr(record, "hyperparameters", {}) or {}).items():
            values.setdefault(key.lower(), (key, str(text), lines.get(key)))
        return cls(getattr(run, "label", run.path), run.path, values)

    @classmethod
    def from_dict(cls, label: str, values: dict[str, str]) -> "RunValues":
        return cls(label, label, {k.lower(): (k, str(v), None) for k, v in values.items()})


def parse_logged(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _convert(name: str, value: Any) -> Any:
    if value is UNKNOWN:
        return UNKNOWN
    try:
        if name == "int":
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:
                    return int(float(value))
            return int(value)
        if name == "float":
            return float(value)
        if name == "bool":
            if isinstance(value, str):
                # a common idiom: bool(int(env)), but also env in ("1", "true")
                return value.strip().lower() not in ("", "0", "false", "no", "off")
            return bool(value)
        if name == "str":
            return str(value)
        if name == "abs":
            return abs(value)
    except (TypeError, ValueError):
        return UNKNOWN
    return UNKNOWN


_BIN = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b, "**": lambda a, b: a ** b,
}
_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "is": lambda a, b: a is b, "is not": lambda a, b: a is not b,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


class Definitions:
    """Where names and attributes get their values, for the evaluator (module constants,
    class attributes such as the ``Hyperparameters`` block, ``self.x = ...`` in methods)."""

    def __init__(self, files: Iterable[ir.FileIR], qualify):
        self.names: dict[str, list[tuple[X, ir.FunctionIR]]] = {}
        self.attrs: dict[str, list[tuple[X, ir.FunctionIR]]] = {}
        self.qualify = qualify
        self.helper_env: dict[str, tuple[int, int]] = {}  # local helper fn name -> (name arg, default arg)
        for f in files:
            self._collect(f)

    def _collect(self, f: ir.FileIR) -> None:
        for func in [f.module_func, *f.functions]:
            # helpers such as `def env_int(name, default): return int(os.environ.get(name, default))`
            if not func.is_module and len(func.body) == 1 and isinstance(func.body[0], ir.Return):
                ret = func.body[0].value
                for x in ir.walk(ret):
                    if isinstance(x, ir.Call) and self.qualify(x.func, func) in _ENV_READS and x.args:
                        first = x.args[0]
                        if isinstance(first, ir.Name) and first.id in func.params:
                            default_index = -1
                            if len(x.args) > 1 and isinstance(x.args[1], ir.Name) and x.args[1].id in func.params:
                                default_index = func.params.index(x.args[1].id)
                            self.helper_env[func.name] = (func.params.index(first.id), default_index)
            self._collect_body(func.body, func, in_class=False)

    def _collect_body(self, body: list[ir.S], func: ir.FunctionIR, in_class: bool) -> None:
        for s in body:
            if isinstance(s, ir.ClassS):
                self._collect_body(s.cls.body, func, in_class=True)
                continue
            if isinstance(s, ir.Assign) and s.op is not None:
                # `self.total += n`: the value changes as the program runs, so no single
                # definition decides it
                for t in s.targets:
                    if isinstance(t, ir.Attr):
                        self.attrs.setdefault(t.attr, []).append((ir.Other(None, "aug", []), func))
                    elif isinstance(t, ir.Name) and (in_class or func.is_module):
                        (self.attrs if in_class else self.names).setdefault(t.id, []).append(
                            (ir.Other(None, "aug", []), func))
            if isinstance(s, ir.Assign) and s.op is None and s.value is not None:
                for t in s.targets:
                    if isinstance(t, ir.Name):
                        if in_class:
                            self.attrs.setdefault(t.id, []).append((s.value, func))
                        elif func.is_module:
                            self.names.setdefault(t.id, []).append((s.value, func))
                    elif isinstance(t, ir.Attr) and isinstance(t.base, ir.Name) and t.base.id in ("self", "cls", "args", "h", "hp", "config", "cfg"):
                        self.attrs.setdefault(t.attr, []).append((s.value, func))
            for block in ir.blocks(s):
                if not isinstance(s, ir.Def):
                    self._collect_body(block, func, in_class)


class Evaluator:
    """Evaluates expressions under one run's logged hyperparameters (or code defaults when
    ``run`` is None). ``uses`` collects the flags read."""

    def __init__(self, defs: Definitions, run: RunValues | None, defaults_unknown: bool = False):
        self.defs = defs
        self.run = run
        self.uses: list[FlagUse] = []
        # treat values no log prints as unknown (to tell whether the logs alone decide)
        self.defaults_unknown = defaults_unknown

    def value(self, x: X | None, func: ir.FunctionIR | None, depth: int = 0, key: str | None = None) -> Any:
        if x is None or depth > _MAX_DEPTH:
            return UNKNOWN
        if isinstance(x, ir.Const):
            return x.value if not x.parts else UNKNOWN
        if isinstance(x, ir.Name):
            return self._name(x.id, func, depth)
        if isinstance(x, ir.Attr):
            return self._attr(x.attr, depth)
        if isinstance(x, ir.Call):
            return self._call(x, func, depth, key)
        if isinstance(x, ir.UnOp):
            v = self.value(x.operand, func, depth + 1)
            if v is UNKNOWN:
                return UNKNOWN
            try:
                return {"not": lambda a: not a, "-": lambda a: -a, "+": lambda a: +a, "~": lambda a: ~a}[x.op](v)
            except (TypeError, KeyError):
                return UNKNOWN
        if isinstance(x, ir.BoolOp):
            left = self.value(x.left, func, depth + 1)
            if x.op == "and":
                if left is not UNKNOWN and not left:
                    return left
                right = self.value(x.right, func, depth + 1)
                return right if left is not UNKNOWN else (UNKNOWN if right is UNKNOWN or right else right)
            if left is not UNKNOWN and left:
                return left
            right = self.value(x.right, func, depth + 1)
            return right if left is not UNKNOWN else (UNKNOWN if right is UNKNOWN or not right else right)
        if isinstance(x, ir.Compare):
            left = self.value(x.left, func, depth + 1)
            result: Any = True
            for op, r in zip(x.ops, x.rights):
                right = self.value(r, func, depth + 1)
                if op in ("is", "is not") and right is None and left is OPAQUE:
                    outcome = op == "is not"
                elif left is UNKNOWN or right is UNKNOWN or op not in _CMP:
                    return UNKNOWN
                else:
                    try:
                        outcome = _CMP[op](left, right)
                    except TypeError:
                        return UNKNOWN
                if not outcome:
                    return False
                left = right
            return result
        if isinstance(x, ir.BinOp):
            a, b = self.value(x.left, func, depth + 1), self.value(x.right, func, depth + 1)
            if x.op == "*" and (a == 0 and a is not UNKNOWN and not isinstance(a, bool) or
                                b == 0 and b is not UNKNOWN and not isinstance(b, bool)):
                return 0
            if a is UNKNOWN or b is UNKNOWN or x.op not in _BIN:
                return UNKNOWN
            try:
                return _BIN[x.op](a, b)
            except (TypeError, ValueError, ZeroDivisionError, OverflowError):
                return UNKNOWN
        if isinstance(x, ir.IfExpr):
            test = self.value(x.test, func, depth + 1)
            if test is UNKNOWN:
                return UNKNOWN
            return self.value(x.body if test else x.orelse, func, depth + 1)
        return UNKNOWN

    # -- pieces
    def _name(self, name: str, func: ir.FunctionIR | None, depth: int) -> Any:
        if func is not None and not func.is_module:
            local = _local_definitions(func).get(name)
            if local is not None:
                if len(local) != 1:
                    return UNKNOWN
                return self.value(local[0], func, depth + 1, key=name)
            if name in func.params:
                return UNKNOWN
        defs = self.defs.names.get(name)
        if not defs:
            return UNKNOWN
        return self._single([(x, f) for x, f in defs], depth, name)

    def _attr(self, attr: str, depth: int) -> Any:
        defs = self.defs.attrs.get(attr)
        # `self.smear = h.smear` copies the attribute of the same name: an alias, not a
        # second definition
        defs = [(x, f) for x, f in defs or () if not (isinstance(x, ir.Attr) and x.attr == attr)]
        if not defs:
            return UNKNOWN
        return self._single(defs, depth, attr)

    def _single(self, defs: list[tuple[X, ir.FunctionIR]], depth: int, key: str) -> Any:
        values = []
        for x, f in defs:
            values.append(self.value(x, f, depth + 1, key=key))
        first = values[0]
        if any(v is UNKNOWN for v in values) or any(v != first for v in values[1:]):
            return UNKNOWN
        return first

    def _call(self, call: ir.Call, func: ir.FunctionIR | None, depth: int, key: str | None) -> Any:
        qual = self.defs.qualify(call.func, func) if func is not None else ir.render(call.func)
        if qual in _ENV_READS and call.args:
            return self._env(call.arg(0), call.arg(1, "default"), func, depth, key)
        helper = self.defs.helper_env.get(qual or "")
        if helper is not None:
            name_x = call.arg(helper[0])
            default_x = call.arg(helper[1]) if helper[1] >= 0 else None
            raw = self._env(name_x, default_x, func, depth, key)
            return raw
        if qual == "getattr" and len(call.args) >= 2 and isinstance(call.args[1], ir.Const) \
                and isinstance(call.args[1].value, str):
            # `getattr(args, "slot_enabled", False)`: the attribute where the code defines
            # it, else the default (a setting the configuration does not have is off)
            name = call.args[1].value
            if self.defs.attrs.get(name):
                return self._attr(name, depth + 1)
            if len(call.args) >= 3:
                default = self.value(call.args[2], func, depth + 1)
                if default is not UNKNOWN:
                    self.uses.append(FlagUse(name, None, default, "default"))
                return default
            return UNKNOWN
        if qual in ("int", "float", "bool", "str", "abs") and len(call.args) == 1:
            return _convert(qual, self.value(call.args[0], func, depth + 1, key))
        if qual in ("min", "max") and call.args:
            values = [self.value(a, func, depth + 1) for a in call.args]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            try:
                return (min if qual == "min" else max)(values)
            except TypeError:
                return UNKNOWN
        if qual and qual.split(".")[-1][:1].isupper():
            return OPAQUE  # a constructed object: only its None-ness is known
        return UNKNOWN

    def _env(self, name_x: X | None, default_x: X | None, func, depth: int, key: str | None) -> Any:
        env = name_x.value if isinstance(name_x, ir.Const) and isinstance(name_x.value, str) else None
        if env is None:
            return UNKNOWN
        if self.run is not None:
            for lookup in ([key.lower()] if key else []) + [env.lower()]:
                found = self.run.values.get(lookup)
                if found is None:
                    continue
                printed, text, line = found
                value = parse_logged(text)
                if printed == env and printed != printed.lower():
                    value = text  # an env dump prints the raw string; the code converts it
                self.uses.append(FlagUse(key or env, env, value, "log", self.run.path, line))
                return value
        if self.defaults_unknown:
            return UNKNOWN
        default = self.value(default_x, func, depth + 1) if default_x is not None else None
        if default is UNKNOWN:
            # still a flag (`os.environ.get("NGRAM_CACHE", "1" if world_size > 1 else "0")`):
            # a guard on it is undecided, not a data-dependent condition to pass over
            self.uses.append(FlagUse(key or env, env, UNKNOWN, "undecided"))
            return UNKNOWN
        self.uses.append(FlagUse(key or env, env, default, "default"))
        return default


def _local_definitions(func: ir.FunctionIR) -> dict[str, list[X]]:
    cached = getattr(func, "_local_defs", None)
    if cached is not None:
        return cached
    defs: dict[str, list[X]] = {}
    for s in ir.walk_statements(func.body):
        if isinstance(s, ir.Assign) and s.value is not None:
            for t in s.targets:
                if isinstance(t, ir.Name):
                    defs.setdefault(t.id, []).append(s.value if s.op is None else ir.Other(None, "aug", []))
        elif isinstance(s, ir.Loop) and s.target is not None:
            for t in ir.walk(s.target):
                if isinstance(t, ir.Name):
                    defs.setdefault(t.id, []).append(ir.Other(None, "loop", []))
    func._local_defs = defs  # type: ignore[attr-defined]
    return defs


def truthy(value: Any) -> bool | None:
    if value is UNKNOWN:
        return None
    try:
        return bool(value)
    except Exception:
        return None

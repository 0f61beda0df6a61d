"""Effects and their order: which code scores validation tokens, which code adapts state
on them, and in which order, through helper functions and loops.

Each reachable function is interpreted abstractly, statement by statement:

* values carry **origins**: the data they were computed from (``VAL`` validation tokens,
  ``TRAIN`` training shards, ``GEN`` generated or random tokens, or ``P:name`` for a
  parameter, resolved at each call site) and the **slice path** that selects a part of it
  (``val_tokens[chunk_start:chunk_end + 1]`` is VAL with path ``[chunk_start:chunk_end + 1]``);
* effects are **events**: ``score`` (a reported loss accumulator grows: ``loss_sum +=
  nll``), ``update`` (``loss.backward()`` on model weights; ``slot`` when the loss depends on
  a tensor created here with ``requires_grad=True``), ``cache`` (count tables incremented),
  ``restore`` (weights reloaded from a snapshot), ``quant`` (quantization/serialization),
  ``read`` (a data read);
* loop bodies run twice; a slice whose bounds change with the loop gets a per-iteration
  tag, so chunk *k* of iteration 1 and chunk *k+1* of iteration 2 are different data, while
  an epoch loop that does not move the slice sees the same data again. ``if epoch == 0``
  and ``if epoch == E - 1`` are understood as first/last iteration;
* calls to local functions replay the callee's exported events, translated to the caller's
  arguments (a fixpoint over the call graph gives parameters their origins).

While interpreting, a score of data that was adapted on before becomes an **incident**:
``update_before_score`` (same loop iteration: train-then-score inside the chunk loop),
``adapt_before_score`` (adapted on unscored validation data earlier, e.g. pre-quant TTT),
``score_after_epoch_update`` (scored in a later pass of an epoch loop after training on the
same tokens in an earlier one), ``rescore_after_adapt`` (scored, adapted, scored again: a
second pass), ``slot_scored_region`` (a per-window tensor optimised on the data it then
scores) and ``rescore_after_calibration``. A score counts from when its value was computed
(a loss taken before the optimizer step and summed after it is score-first). Data whose
origin nothing establishes (a token-like parameter no caller fills with known data) is
followed too; its incidents are marked uncertain and reported for review. The rules turn
incidents into findings.

Functions with nothing to track (model layers, math helpers) are not simulated: they pass
their inputs through. Summaries are settled callees-first; parameters then learn their
origins in one pass from callers to callees.

Over 700 lines for a reason: ``Simulation`` is one abstract interpreter (about 1,000 lines)
whose statement, expression and call handlers share the state, the loop tags and the event
clock, and ``Analysis`` is its driver; the value types above them (origins, events,
incidents) are what both build and what the rules read through ``describe``. Split apart,
every handler would pass that state across modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Iterable

from . import ir
from .patterns import (
    ACCUM_RE, COUNT_TABLE_RE, GENERATE_RE, NOT_ACCUM_RE, QUANT_CALL_RE, READ_CALL_RE, REPORTED_RE, SIZE_ATTRS, SIZE_CALLS,
    TARGET_NAME_RE, TRAIN_FILE_RE, TRAIN_NAME_RE, VAL_FILE_RE, VAL_NAME_RE, last_part,
)
from .program import LocalInfo, Program, Site, base_name, bind_arguments, container_name, target_names

DATA_ROOTS = ("VAL", "TRAIN", "GEN")
_IDENT_RE = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_WIDENED_RE = re.compile(r"<loop@(\d+)>$")
# attributes of tensors that keep the tensor's data (never looked up as object attributes)
_TENSOR_ATTRS = frozenset({"T", "mT", "data", "grad", "real", "imag", "weight", "bias"})
MAX_ROUNDS = 5
MAX_LOOP_DEPTH = 6
# parameters that look like token data (for undecided findings) and ones that are sizes
_TOKEN_PARAM_RE = re.compile(r"tok|ids|data|batch|input|doc|text|stream|seq$|^x$|^xs$", re.I)
_SIZE_PARAM_RE = re.compile(r"len|size|count|stride|step|num|^n_|_n$|^n$|idx|index|pos|offset", re.I)
# parameters that place a slice (a chunk's start or end) rather than size it
_BOUND_PARAM_RE = re.compile(r"start|end|begin|stop|lo$|hi$|offset|pos", re.I)
_CONFIG_NAMES = {"args", "cfg", "config", "hp", "hparams", "h", "self", "cls", "opts", "options", "device", "model"}
_ORDERED_KINDS = ("score", "update", "cache")
# conversions that do not compute anything new from the model
_CHEAP_CALLS = {"item", "sum", "mean", "detach", "float", "double", "cpu", "to", "clone", "numpy", "tolist", "squeeze",
                "view", "reshape", "flatten", "int", "float", "abs", "len", "numel", "size"}
_STORE_CALLS = {"save", "savez", "savez_compressed", "compress", "register_buffer"}
_BINARY_DUMPERS = {"pickle", "joblib", "torch", "marshal", "dill", "cloudpickle"}
_FILE_VAR_RE = re.compile(r"(?:file|pattern|path|shard)s?$")
_PATH_CALLS = {"join", "glob", "iglob", "sorted", "Path", "str", "format", "expanduser", "abspath", "realpath",
               "list", "tuple", "fspath", "with_suffix", "replace", "strip"}
_EVAL_NAME_RE = re.compile(r"^(?:eval|evaluate|score)(?:_|$)|_(?:eval|evaluate)$")
_LOSS_CALLS = {"cross_entropy", "nll_loss", "log_softmax", "binary_cross_entropy", "kl_div", "CrossEntropyLoss"}
_STATEFUL_CALLS = {"next", "__next__", "next_batch", "get_batch", "sample_batch", "pop", "popleft"}
# Calls that load saved weights: where a script reads its artifact back for evaluation.
WEIGHT_LOADS = frozenset({"torch.load", "pickle.load", "pickle.loads", "safetensors.torch.load_file",
                          "safetensors.torch.load", "torch.jit.load"})


@dataclass(frozen=True)
class Elem:
    """One step of a slice path (``[chunk_start:chunk_end + 1]``). Equality is the text plus
    the loop-iteration tags; ``names`` are the variables the text mentions."""

    text: str
    tags: tuple = ()
    names: frozenset = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class Origin:
    root: str
    path: tuple = ()
    via: str = ""

    @property
    def is_data(self) -> bool:
        return self.root in DATA_ROOTS or self.root.startswith(("P:", "F:"))

    @property
    def tags(self) -> set:
        out: set = set()
        for e in self.path:
            out.update(e.tags)
        return out

    def text(self) -> str:
        root = {"VAL": "validation tokens", "TRAIN": "training data", "GEN": "generated tokens"}.get(self.root, self.root)
        if self.root.startswith("P:"):
            root = f"parameter `{self.root[2:]}`"
        return root + "".join(e.text for e in self.path)


class EventKind(str, Enum):
    """What a statement does to the data or the model (compares equal to its value)."""

    SCORE = "score"       # a reported loss accumulator grows
    UPDATE = "update"     # backward on the scored model's weights (detail "weights") or a SLOT tensor ("slot")
    CACHE = "cache"       # a count table incremented
    READ = "read"         # data read
    QUANT = "quant"       # quantization or serialization (detail "checkpoint" for a raw state_dict save)
    LOAD = "load"         # saved weights read back: where evaluation of the artifact starts
    RESTORE = "restore"   # weights reloaded from an in-memory snapshot


class IncidentKind(str, Enum):
    """An order of events that breaks a rule (see the module docstring)."""

    UPDATE_BEFORE_SCORE = "update_before_score"
    ADAPT_BEFORE_SCORE = "adapt_before_score"
    SCORE_AFTER_EPOCH_UPDATE = "score_after_epoch_update"
    RESCORE_AFTER_ADAPT = "rescore_after_adapt"
    SLOT_SCORED_REGION = "slot_scored_region"
    RESCORE_AFTER_CALIBRATION = "rescore_after_calibration"


@dataclass
class Event:
    kind: EventKind
    site: Site
    origins: frozenset
    detail: str = ""          # weights/slot for updates; callee name for inlined events
    loops: tuple = ()         # ((loop, iteration), ...) outermost first
    seq: int = 0
    inner: tuple = ()         # sites inside callees, outermost call first
    after_artifact: bool = False


@dataclass
class Adapt:
    detail: str
    scored: bool
    event: Event
    consumed_at: int | None = None  # the scoring statement that already reported this adaptation


@dataclass
class Incident:
    kind: IncidentKind
    func: ir.FunctionIR
    score: Event
    update: Event
    origin: Origin
    loop: ir.Loop | None = None
    quant: Event | None = None
    first_score: Event | None = None  # the earlier scoring of the same data, for re-scores
    uncertain: bool = False           # the data may not be validation tokens (its origin is unknown)


@dataclass
class Selection:
    """Two scoring passes compared or combined (`min(bpb_a, bpb_b)`), or a loss scored once
    per candidate value of a loop (``loop``)."""

    site: Site
    scores: frozenset
    loops: tuple = ()
    loop: ir.Loop | None = None


@dataclass
class ExportEvent:
    kind: str
    detail: str
    origins: frozenset        # symbolic: roots P:<param> or data roots, paths of slices over params
    site: Site
    inner: tuple = ()


@dataclass
class Summary:
    returns: frozenset = frozenset()
    exports: tuple = ()
    returns_score: bool = False
    returns_state: bool = False
    returns_loss: bool = False
    restores: tuple = ()       # parameter names whose values are loaded into the weights
    restores_entry: bool = False
    param_actual: dict = field(default_factory=dict)  # param -> concrete origins from call sites

    def signature(self):
        return (self.returns, tuple((e.kind, e.detail, e.origins) for e in self.exports), self.returns_score,
                self.returns_state, self.restores, self.restores_entry)


@dataclass
class CallRecord:
    caller: ir.FunctionIR
    stmt: ir.S | None
    call: ir.Call
    callee: ir.FunctionIR
    args: dict                 # param -> (expression, concrete origins)
    loops: tuple = ()


class CallShape:
    """What a call's name says, worked out once per call site."""

    __slots__ = ("qual", "method", "store", "selection", "loss", "size", "env", "generate", "closure_step",
                 "constructor", "path", "eval_name", "stateful", "quant", "read")

    def __init__(self, x: ir.Call, qual: str):
        method = ir.call_name(x)
        last = last_part(qual)
        name = method or qual
        self.qual, self.method = qual, method
        # serialising into the artifact; a JSON or text dump (a progress file, a log line)
        # does not reach it
        self.store = (last in _STORE_CALLS or method == "register_buffer"
                      or last in ("dump", "dumps") and qual.split(".")[0] in _BINARY_DUMPERS)
        self.selection = qual in ("min", "max", "numpy.minimum", "numpy.maximum", "torch.minimum", "torch.maximum",
                                  "sorted")
        self.loss = last in _LOSS_CALLS or method in _LOSS_CALLS
        self.size = method in SIZE_CALLS or qual in SIZE_CALLS
        self.env = qual.startswith(("os.environ", "os.getenv"))
        self.generate = qual in ("torch.randint", "torch.randn", "torch.rand", "torch.randperm",
                                 "numpy.random.randint") or bool(GENERATE_RE.search(method or ""))
        self.closure_step = method == "step" or "closure" in (method or "")
        self.constructor = _constructor_name(qual)
        self.path = last in _PATH_CALLS or method in _PATH_CALLS
        self.eval_name = bool(_EVAL_NAME_RE.search(method or ""))
        self.stateful = last in _STATEFUL_CALLS or method in _STATEFUL_CALLS
        self.quant = bool(QUANT_CALL_RE.search(name or ""))
        self.read = bool(READ_CALL_RE.search(name or ""))


class State:
    """What the interpretation knows at one point: variable origins, which data has been
    scored, which has been adapted on (and whether it had been scored first), weight
    snapshots, and whether the artifact has been written yet."""

    __slots__ = ("env", "scored", "adapted", "snapshots", "after_artifact", "wrote", "dead", "computed")

    def __init__(self):
        self.env: dict[str, frozenset] = {}
        self.computed: dict[str, int] = {}  # name -> event clock when its value was computed
        self.scored: dict[Origin, Event] = {}
        self.adapted: dict[Origin, Adapt] = {}
        self.snapshots: dict[str, dict[Origin, Adapt]] = {}
        # the artifact has been loaded back for evaluation (see ``Simulation.event``)
        self.after_artifact = False
        # something was quantized or serialized outside a loop (a candidate artifact)
        self.wrote = False
        # the path ended here (``return``/``raise``): nothing after it runs on this path
        self.dead = False

    def copy(self) -> "State":
        st = State()
        st.env = dict(self.env)
        st.scored = dict(self.scored)
        st.adapted = dict(self.adapted)
        st.snapshots = dict(self.snapshots)
        st.after_artifact = self.after_artifact
        st.wrote = self.wrote
        st.dead = self.dead
        st.computed = dict(self.computed)
        return st

    def merge(self, other: "State") -> None:
        if other.dead:
            return  # a branch that returned does not reach the code after the `if`
        if self.dead:
            self.take(other)
            return
        for k, v in other.env.items():
            mine = self.env.get(k)
            self.env[k] = v if mine is None else (mine | v)
        for k, v in other.scored.items():
            self.scored.setdefault(k, v)
        for k, v in other.adapted.items():
            mine = self.adapted.get(k)
            if mine is None:
                self.adapted[k] = v
            elif mine.scored and not v.scored:
                self.adapted[k] = v
        for k, v in other.snapshots.items():
            self.snapshots.setdefault(k, v)
        self.after_artifact = self.after_artifact or other.after_artifact
        self.wrote = self.wrote or other.wrote
        for k, v in other.computed.items():
            if v > self.computed.get(k, -1):
                self.computed[k] = v

    def take(self, other: "State") -> None:
        for slot in self.__slots__:
            setattr(self, slot, getattr(other, slot))


def _same_step(a: Elem, b: Elem, across_loops: bool = True) -> bool:
    """Path steps select the same data. A step a helper exported as "near its parameter"
    (`[j~]`) matches any step of the same loop iteration. A step a finished loop widened
    (`<loop@N>`, see ``Simulation.collapse``) stands for everything that loop went over in
    the same outer iterations: it matches any step selected in some iteration of loop N
    (unless ``across_loops`` is off)."""
    if a.text.endswith("~]") or b.text.endswith("~]"):
        return a.tags == b.tags
    if a == b:
        return True
    return across_loops and (_within_loop(a, b) or _within_loop(b, a))


def _within_loop(widened: Elem, e: Elem) -> bool:
    m = _WIDENED_RE.match(widened.text)
    if m is None or e.text == widened.text:
        return False
    lid = int(m.group(1))
    return any(t[0] == lid for t in e.tags) and set(widened.tags) <= set(e.tags)


def _same_path(a: tuple, b: tuple, across_loops: bool = True) -> bool:
    return all(_same_step(x, y, across_loops) for x, y in zip(a, b))


def overlaps(a: Origin, b: Origin) -> bool:
    if a.root != b.root:
        return False
    return _same_path(a.path, b.path)


def covers(outer: Origin, inner: Origin) -> bool:
    return outer.root == inner.root and len(outer.path) <= len(inner.path) and _same_path(outer.path, inner.path)


class Analysis:
    """Runs the interpretation over the whole program and keeps the results."""

    def __init__(self, program: Program):
        self.program = program
        self.summaries: dict[ir.FunctionIR, Summary] = {}
        self.events: dict[ir.FunctionIR, list[Event]] = {}
        self.incidents: dict[ir.FunctionIR, list[Incident]] = {}
        self.call_records: dict[int, CallRecord] = {}
        self.attr_env: dict[str, frozenset] = {}
        self.global_env: dict[str, frozenset] = {}
        self.varying_cache: dict[int, frozenset] = {}
        self.loss_cache: dict[int, bool] = {}
        self._state_cache: dict[int, bool] = {}
        self._call_cache: dict[int, list] = {}
        self._shapes: dict[int, CallShape] = {}
        self._seq = 0
        self.rounds = 0
        self.dirty: dict = {}
        self.stale_actuals: set = set()
        self._clock = 0
        self.selections: dict[ir.FunctionIR, list[Selection]] = {}
        self.marker_sites: dict[str, Site] = {}
        self.grids: dict[ir.FunctionIR, list[Selection]] = {}
        self.stores: dict[ir.FunctionIR, list[Selection]] = {}
        self.attr_readers: dict[str, set] = {}
        self.global_readers: dict[str, set] = {}
        self.reads_back = _reads_weights_back(program)
        self.failures: dict[ir.FunctionIR, str] = {}  # functions whose simulation crashed
        self._run()

    # ---- driver
    def _run(self) -> None:
        """Simulate every function callees-first, then again only those whose inputs moved
        (a callee's summary, their parameters' origins, an attribute or global they read),
        until nothing moves or MAX_ROUNDS passes."""
        order = self.program.bottom_up()
        position = {f: i for i, f in enumerate(order)}
        for func in order:
            self.summaries.setdefault(func, Summary())
        callers = self.program.callers
        # class attributes (the Hyperparameters block) first: most functions read them
        for f in self.program.files:
            pre = Simulation(self, f.module_func)
            st = State()
            for s in ir.walk_statements(f.module_func.body):
                if isinstance(s, ir.ClassS):
                    pre.class_body(s.cls.body, st)
        # functions with nothing to track (model layers, math helpers) pass their inputs
        # through: they get that summary without being simulated
        effectful = self._effectful(order)
        for func in order:
            if func not in effectful:
                self.summaries[func] = _pass_through(func)
                self.events[func] = []
                self.incidents[func] = []
        order = [f for f in order if f in effectful]
        last_run: dict[ir.FunctionIR, int] = {}
        self.dirty = {f: 0 for f in order}
        for round_no in range(MAX_ROUNDS):
            # a function marked after its last simulation has stale inputs
            stale = [f for f, marked in self.dirty.items() if marked >= last_run.get(f, -1)]
            if not stale:
                break
            self.rounds = round_no + 1
            batch = sorted(stale, key=lambda f: position.get(f, 0))
            self.dirty = {}
            for func in batch:
                before = self.summaries[func].signature()
                last_run[func] = self._clock
                self._clock += 1
                self.stale_actuals.discard(func)
                self._simulate(func)
                if before != self.summaries[func].signature():
                    for caller, _call, _stmt in callers.get(func, ()):
                        self.mark(caller)
                    if func.parent is not None:
                        self.mark(func.parent)
        # Summaries do not depend on what callers pass (they speak of parameters), but what
        # a function finds does: once the summaries are settled, one pass from callers to
        # callees re-runs each function whose parameters learnt new origins, which in turn
        # informs its callees later in the same pass.
        for func in reversed(order):
            if func in self.stale_actuals:
                self.stale_actuals.discard(func)
                self._simulate(func)

    def _simulate(self, func: ir.FunctionIR) -> None:
        """One function's simulation. A crash is contained to that function: it keeps no
        events, and ``failures`` says why, so the rules report the analysis incomplete
        instead of losing every other function's facts."""
        try:
            Simulation(self, func).run()
        except RecursionError as exc:
            self._failed(func, exc)
        except Exception as exc:  # noqa: BLE001 - any fault in one function's model
            self._failed(func, exc)

    def _failed(self, func: ir.FunctionIR, exc: BaseException) -> None:
        self.failures[func] = f"{type(exc).__name__}: {exc}"
        self.summaries[func] = _pass_through(func)
        self.events[func] = []
        self.incidents[func] = []

    def mark(self, func: ir.FunctionIR) -> None:
        if func in self.summaries and not getattr(self.summaries[func], "pass_through", False):
            self.dirty[func] = self._clock

    def _effectful(self, order: list[ir.FunctionIR]) -> set[ir.FunctionIR]:
        """Functions whose simulation can matter: they score, update, read data, name data
        sources, snapshot or restore weights, write containers, or call such a function."""
        direct = {f for f in order if f.is_module or _has_effect_syntax(f, self.program)}
        callers = self.program.callers
        effectful = set(direct)
        stack = list(direct)
        while stack:
            f = stack.pop()
            for caller, _call, _stmt in callers.get(f, ()):
                if caller not in effectful:
                    effectful.add(caller)
                    stack.append(caller)
            if f.parent is not None and f.parent not in effectful:
                effectful.add(f.parent)
                stack.append(f.parent)
        return effectful

    def add_attr(self, attr: str, origins: frozenset) -> None:
        old = self.attr_env.get(attr, frozenset())
        new = old | origins
        if new != old:
            self.attr_env[attr] = new
            for f in self.attr_readers.get(attr, ()):
                self.mark(f)

    def set_globals(self, env: dict) -> None:
        for name, value in env.items():
            if self.global_env.get(name) != value:
                for f in self.global_readers.get(name, ()):
                    self.mark(f)
        self.global_env = env

    def call_shape(self, x: ir.Call, func: ir.FunctionIR) -> "CallShape":
        shape = self._shapes.get(id(x))
        if shape is None:
            shape = self._shapes[id(x)] = CallShape(x, self.program.qualify(x.func, func) or "")
        return shape

    def mentions_state(self, x: ir.X) -> bool:
        cached = self._state_cache.get(id(x))
        if cached is None:
            cached = self._state_cache[id(x)] = _mentions_state(x)
        return cached

    def calls_in(self, x: ir.X) -> list:
        cached = self._call_cache.get(id(x))
        if cached is None:
            cached = self._call_cache[id(x)] = [y for y in ir.walk(x) if isinstance(y, ir.Call)]
        return cached

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- queries used by rules
    def all_incidents(self) -> list[Incident]:
        out: list[Incident] = []
        for func in self.program.functions:
            out.extend(self.incidents.get(func, ()))
        return out

    def all_selections(self) -> list[Selection]:
        return [sel for func in self.program.functions for sel in self.selections.get(func, ())]

    def all_grids(self) -> list[Selection]:
        out, seen = [], set()
        for func in self.program.functions:
            for g in self.grids.get(func, ()):
                key = (id(g.site.stmt), id(g.loop))
                if key not in seen:
                    seen.add(key)
                    out.append(g)
        return out

    def all_events(self) -> Iterable[Event]:
        for func in self.program.functions:
            yield from self.events.get(func, ())

    def concrete(self, origin: Origin, func: ir.FunctionIR) -> frozenset:
        """The data an origin stands for: a parameter's origins come from its callers (or,
        with no caller passing data, from its name)."""
        if not origin.root.startswith("P:"):
            return frozenset((origin,))
        name = origin.root[2:]
        actual = self.summaries.get(func, Summary()).param_actual.get(name)
        if actual:
            return frozenset(_extend(a, origin.path) for a in actual)
        return frozenset(Origin(c.root, origin.path, c.via) for c in _convention(name))

    def roots(self, origins: Iterable[Origin], func: ir.FunctionIR) -> set[str]:
        out: set[str] = set()
        for o in origins:
            if o.root in DATA_ROOTS:
                out.add(o.root)
            elif o.root.startswith("P:"):
                out.update(c.root for c in self.concrete(o, func))
        return out

    def is_val(self, origin: Origin, func: ir.FunctionIR) -> bool:
        if origin.root == "VAL":
            return True
        if origin.root.startswith("P:"):
            return any(c.root == "VAL" for c in self.concrete(origin, func))
        return False

    def val_by_flow(self, origin: Origin, func: ir.FunctionIR) -> bool:
        """Validation data established by data flow (a validation file, or a caller passing
        it), not only by a parameter's name (``val_tokens`` that no caller fills)."""
        if origin.root == "VAL":
            return True
        if origin.root.startswith("P:"):
            actual = self.summaries.get(func, Summary()).param_actual.get(origin.root[2:])
            return bool(actual) and any(c.root == "VAL" for c in actual)
        return False

    def val_loaders(self, origins: Iterable[Origin], func: ir.FunctionIR) -> list[str]:
        """Markers of loaders over validation files that these origins came from."""
        out = []
        for o in origins:
            for c in self.concrete(o, func) if o.root.startswith("P:") else (o,):
                if c.via.startswith("loader#") and c.root == "VAL":
                    out.append(c.via)
        return out

    def varying(self, loop: ir.Loop, func: ir.FunctionIR) -> frozenset:
        """Names whose value changes from one iteration of ``loop`` to the next."""
        cached = self.varying_cache.get(id(loop))
        if cached is not None:
            return cached
        varying: set[str] = set(target_names(loop.target)) if loop.target is not None else set()
        direct_plain: set[str] = set()
        self_acc: set[str] = set()
        assigns: list[tuple[list[str], frozenset]] = []

        def scan(body: list[ir.S], direct: bool) -> None:
            for s in body:
                if isinstance(s, ir.Assign):
                    for t in s.targets:
                        names = target_names(t)
                        if not names:
                            continue
                        value_names = s.value.names if s.value is not None else frozenset()
                        self_ref = s.op is not None or any(n in value_names for n in names)
                        stateful = s.value is not None and any(
                            isinstance(y, ir.Call) and last_part(self.program.qualify(y.func, func) or "") in _STATEFUL_CALLS
                            for y in ir.walk(s.value))
                        if self_ref or stateful:
                            self_acc.update(names)
                        elif direct:
                            direct_plain.update(names)
                        assigns.append((names, value_names))
                elif isinstance(s, ir.Loop):
                    if s.target is not None:
                        assigns.append((target_names(s.target), s.iter.names if s.iter is not None else frozenset()))
                    scan(s.body, False)
                    scan(s.orelse, False)
                    continue
                elif isinstance(s, ir.With):
                    for item, alias in s.items:
                        if alias is not None:
                            assigns.append((target_names(alias), item.names))
                if isinstance(s, ir.Def):
                    continue
                for block in ir.blocks(s):
                    scan(block, direct)

        scan(loop.body, True)
        if loop.kind == "while" and loop.iter is not None:
            # `while pos < total:` iterates over what its condition tests
            pass
        varying |= {n for n in self_acc if n not in direct_plain}
        changed = True
        while changed:
            changed = False
            for names, value_names in assigns:
                if value_names & varying and not set(names) <= varying:
                    varying.update(names)
                    changed = True
        result = frozenset(varying)
        self.varying_cache[id(loop)] = result
        return result


class Simulation:
    def __init__(self, analysis: Analysis, func: ir.FunctionIR):
        self.a = analysis
        self.p = analysis.program
        self.func = func
        self.info: LocalInfo = self.p.local_info(func)
        self.summary = analysis.summaries.setdefault(func, Summary())
        self.events: list[Event] = []
        self.incidents: list[Incident] = []
        self._incident_keys: dict = {}  # key -> index in self.incidents
        self.loops: list[tuple[ir.Loop, int]] = []
        self.comp_names: list[dict[str, frozenset]] = []
        self.returns: set[Origin] = set()
        self.returns_score = False
        self.restores: set[str] = set()
        self.restores_entry = False
        self.stmt: ir.S | None = None
        self.quant_seqs: list[int] = []
        self._accumulators: dict[str, bool] = {}
        self.undone: set[int] = set()
        self.selections: list[Selection] = []
        self.grids: list[Selection] = []
        self.stores: list[Selection] = []

    # ---- driver
    def run(self) -> None:
        st = State()
        for p in self.func.params:
            name = p.lstrip("*")
            st.env[name] = frozenset((Origin("P:" + name),))
        self.block(self.func.body, st)
        self.a.events[self.func] = self.events
        self.a.incidents[self.func] = self.incidents
        self.a.selections[self.func] = self.selections
        self.a.grids[self.func] = self.grids
        self.a.stores[self.func] = self.stores
        if self.func.is_module and self.func.file.is_entry:
            self.a.set_globals(dict(st.env))
        self._summarise()

    def _summarise(self) -> None:
        exports: list[ExportEvent] = []
        seen: set = set()
        # where this function already breaks the order (reported here), callers see the
        # canonical score-first order so that they do not report it again
        reported_here = bool(self.incidents)
        for ev in self.events:
            if ev.kind not in ("score", "update", "cache", "quant", "load", "read") or ev.seq in self.undone:
                continue
            origins = frozenset(o for o in (self._export_origin(o) for o in ev.origins) if o is not None)
            if ev.kind in ("score", "update", "cache", "read") and not origins:
                continue
            key = (ev.kind, "" if ev.kind == "score" else ev.detail, origins)
            if key in seen:
                continue
            seen.add(key)
            if ev.kind in ("score", "update", "cache") and any(
                    e.kind == ev.kind and (e.detail == ev.detail or ev.kind == "score")
                    and all(any(covers(p, o) for p in e.origins) for o in origins) for e in exports):
                # already covered by an earlier export of the same effect: alternatives in
                # branches (`if mode == "phased": ... else: ...`) must not read as a sequence
                continue
            exports.append(ExportEvent(ev.kind, ev.detail, origins, ev.site, ev.inner))
        if reported_here:
            exports.sort(key=lambda e: 0 if e.kind == "score" else 1)
        s = self.summary
        s.returns = frozenset(o for o in (self._export_origin(o, keep_markers=True) for o in self.returns) if o is not None)
        s.exports = tuple(exports)
        s.returns_score = self.returns_score
        s.returns_state = self._returns_state()
        s.returns_loss = self._returns_loss()
        s.restores = tuple(sorted(self.restores))
        s.restores_entry = self.restores_entry

    def _returns_state(self) -> bool:
        cached = getattr(self.func, "_returns_state", None)
        if cached is None:
            cached = self._returns_state_uncached()
            self.func._returns_state = cached  # type: ignore[attr-defined]
        return cached

    def _returns_state_uncached(self) -> bool:
        for s in ir.walk_statements(self.func.body):
            if isinstance(s, ir.Return) and s.value is not None:
                names = self.info.closure_back(s.value.names)
                for n in names:
                    for value in self.info.defs.get(n, ()):
                        if _mentions_state(value):
                            return True
                if _mentions_state(s.value):
                    return True
        return False

    def _returns_loss(self) -> bool:
        for s in ir.walk_statements(self.func.body):
            if isinstance(s, ir.Return) and s.value is not None:
                if self._computes_loss(s.value):
                    return True
                for n in self.info.closure_back(s.value.names):
                    for d in self.info.defs.get(n, ()):
                        if self._computes_loss(d):
                            return True
        return False

    def _export_origin(self, o: Origin, keep_markers: bool = False) -> Origin | None:
        if o.root == "SCORE":
            return o if keep_markers else None
        if not o.is_data:
            return None
        params = {p.lstrip("*") for p in self.func.params}
        local = self.info.assigned - params
        path: list[Elem] = []
        for e in o.path:
            if e.text.startswith("<"):
                break
            if e.names & local:
                # slices over this function's own variables mean nothing to a caller; one
                # that also moves with a parameter (`tokens[j - k]`) still says "near j".
                # A slice whose local bounds are computed from parameters
                # (`raw_start = chunk_start + b * seq_len`) stays within what the caller
                # passed: "near chunk_start", not the whole argument
                moving = sorted(n for n in e.names & params if n not in _CONFIG_NAMES)
                if ":" in e.text:
                    derived = {n for n in self.info.closure_back(e.names & local) & params
                               if _BOUND_PARAM_RE.search(n) and not _TOKEN_PARAM_RE.search(n)}
                    moving = sorted(derived) if derived else []
                if not moving:
                    break  # a slice over local bounds: the caller sees the whole argument
                path.append(Elem("[" + ", ".join(f"{n}~" for n in moving) + "]", (), frozenset(moving)))
                break
            path.append(Elem(e.text, (), e.names))
        return Origin(o.root, tuple(path), o.via)

    # ---- statements
    def block(self, body: list[ir.S], st: State) -> None:
        for s in body:
            if st.dead:
                return  # after `return`/`raise` on this path
            self.stmt = s
            self.statement(s, st)

    def statement(self, s: ir.S, st: State) -> None:
        if isinstance(s, ir.Assign):
            self.assign(s, st)
        elif isinstance(s, ir.ExprS):
            self.ev(s.value, st)
        elif isinstance(s, ir.Return):
            if s.value is not None:
                origins = self.ev(s.value, st)
                self.returns.update(origins)
                if any(o.root == "SCORE" for o in origins):
                    self.returns_score = True
            st.dead = True
        elif isinstance(s, ir.If):
            self.branch(s, st)
        elif isinstance(s, ir.Loop):
            self.loop(s, st)
        elif isinstance(s, ir.With):
            for item, alias in s.items:
                origins = self.ev(item, st)
                if alias is not None:
                    self.bind(alias, origins, None, st)
            self.block(s.body, st)
        elif isinstance(s, ir.Try):
            self.block(s.body, st)
            self.block(s.orelse, st)
            # an exception handler may carry on after a body that returned or raised
            st.dead = False
            self.block(s.final, st)
        elif isinstance(s, ir.ClassS):
            if self.func.is_module:
                self.class_body(s.cls.body, st)
        elif isinstance(s, ir.Flow):
            if s.value is not None:
                self.ev(s.value, st)
            if s.kind == "raise":
                st.dead = True

    def class_body(self, body: list[ir.S], st: State) -> None:
        for s in body:
            if isinstance(s, ir.Assign) and s.value is not None:
                self.stmt = s
                origins = self.ev(s.value, st)
                for t in s.targets:
                    if isinstance(t, ir.Name):
                        self.a.add_attr(t.id, origins)
                        # class bodies see their own attributes as names
                        st.env.setdefault("__class__." + t.id, origins)

    def assign(self, s: ir.Assign, st: State) -> None:
        value = s.value
        if s.op is None and isinstance(value, ir.Seq) and value.kind in ("tuple", "list") and s.targets and all(
                isinstance(t, ir.Seq) and len(t.items) == len(value.items) for t in s.targets):
            # `x, y = chunk[:-1], chunk[1:]`: element by element
            items = [self.ev(v, st) for v in value.items]
            for t in s.targets:
                for ti, vi, oi in zip(t.items, value.items, items):
                    self.bind(ti, oi, vi, st)
            return
        origins = self.ev(value, st) if value is not None else frozenset()
        for t in s.targets:
            if s.op is not None:
                self.augmented(s, t, origins, st)
            else:
                self.bind(t, origins, value, st)

    def augmented(self, s: ir.Assign, t: ir.X, origins: frozenset, st: State) -> None:
        name = container_name(t)
        if name and (self.is_accumulator(name) or self._loss_total(name, s.value)):
            self.score(Site(self.func, s, t), origins, st, name, value=s.value)
            if isinstance(t, ir.Name):
                st.env[t.id] = st.env.get(t.id, frozenset()) | self._score_marker(s)
            return
        if isinstance(t, ir.Sub) and s.op in ("+", "-", "|", "*") and self._persistent_table(t, s.value):
            index_origins = frozenset().union(*(self.ev(i, st) for i in t.index)) if t.index else frozenset()
            self.event("cache", Site(self.func, s, t), index_origins | origins, st, detail="cache")
            self.store_into(t, _as_state(index_origins | origins), st)
            return
        if isinstance(t, ir.Name):
            st.env[t.id] = st.env.get(t.id, frozenset()) | origins
        elif isinstance(t, ir.Attr):
            self.a.add_attr(t.attr, origins)

    def bind(self, t: ir.X, origins: frozenset, value: ir.X | None, st: State) -> None:
        if isinstance(t, ir.Name):
            if value is not None and self._reported(t.id) and not self.info.trains_on(t.id) \
                    and self._computes_loss(value):
                # `val_nll = F.cross_entropy(logits, y)` reported as is
                self.score(Site(self.func, self.stmt, t), origins, st, t.id)
                origins = frozenset(o for o in origins if not o.is_data) | self._score_marker(self.stmt)
            st.env[t.id] = origins
            st.computed[t.id] = self.a._seq
            if value is not None:
                self.maybe_snapshot(t.id, value, st)
            return
        if isinstance(t, ir.Seq):
            for ti in t.items:
                self.bind(ti, origins, None, st)
            return
        if isinstance(t, ir.Other) and t.kind == "starred":
            for part in t.parts:
                self.bind(part, origins, None, st)
            return
        if isinstance(t, ir.Attr):
            self.a.add_attr(t.attr, origins)
            return
        if isinstance(t, ir.Sub):
            name = container_name(t)
            index_origins = frozenset().union(*(self.ev(i, st) for i in t.index)) if t.index else frozenset()
            if name and self.is_accumulator(name):
                self.score(Site(self.func, self.stmt, t), origins, st, name, value=value)
            elif value is not None and name and _refers_to(value, name) and self._persistent_table(t, value):
                self.event("cache", Site(self.func, self.stmt, t), index_origins | origins, st, detail="cache")
                origins = _as_state(index_origins | origins)
            self.store_into(t, origins, st)

    def _persistent_table(self, target: ir.X, value: ir.X | None) -> bool:
        """A write that keeps state across positions (a count table, an object's or the
        module's table), not an edit of a temporary (`tilted[hint] += beta`)."""
        x = target
        while isinstance(x, ir.Sub):
            x = x.base
        if isinstance(x, ir.Attr):
            return True
        if not isinstance(x, ir.Name):
            return False
        if _count_like(x):
            return True
        if isinstance(value, ir.Const) and isinstance(value.value, int) or isinstance(value, ir.BinOp) and (
                isinstance(value.right, ir.Const) and isinstance(value.right.value, int)):
            return True  # counting: `t[k] += 1`, `t[k] = t.get(k, 0) + 1`
        return x.id not in self.info.assigned  # a parameter or module-level table

    def store_into(self, target: ir.X, origins: frozenset, st: State) -> None:
        """What a write into a container (`t[k] = v`, `self.counts[k] += 1`) adds to it:
        an object attribute holds it, not the whole object."""
        x = target
        while isinstance(x, ir.Sub):
            x = x.base
        if isinstance(x, ir.Attr):
            self.a.add_attr(x.attr, origins)
        elif isinstance(x, ir.Name):
            st.env[x.id] = st.env.get(x.id, frozenset()) | origins

    def branch(self, s: ir.If, st: State) -> None:
        test_origins = self.ev(s.test, st)
        if isinstance(s.test, ir.Compare) and len(_score_ids(test_origins)) >= 2:
            # `if bpb_after < bpb_before: best = ...`: choosing between two scoring passes
            self.selections.append(Selection(Site(self.func, s, s.test), _score_ids(test_origins), tuple(self.loops)))
        which = self.iteration_condition(s.test)
        take_body, take_else = True, True
        if which is not None:
            loop, kind = which
            it = next((i for l, i in self.loops if l is loop), None)
            if it is not None:
                first = it == 1
                take_body = first if kind == "first" else not first
                take_else = not take_body
        if take_body and take_else:
            other = st.copy()
            self.block(s.body, st)
            self.block(s.orelse, other)
            st.merge(other)
        elif take_body:
            self.block(s.body, st)
        else:
            self.block(s.orelse, st)

    def iteration_condition(self, test: ir.X, depth: int = 0) -> tuple[ir.Loop, str] | None:
        """``if epoch == 0`` (first iteration) or ``if epoch == epochs - 1`` (a later one)
        for the target of an enclosing loop."""
        if depth > 3 or not self.loops:
            return None
        loop_vars: dict[str, ir.Loop] = {}
        for loop, _it in self.loops:
            if loop.target is not None:
                for n in target_names(loop.target):
                    loop_vars[n] = loop
        if isinstance(test, ir.BoolOp) and test.op == "and":
            return self.iteration_condition(test.left, depth + 1) or self.iteration_condition(test.right, depth + 1)
        if isinstance(test, ir.UnOp) and test.op == "not" and isinstance(test.operand, ir.Name) \
                and test.operand.id in loop_vars:
            return loop_vars[test.operand.id], "first"
        if isinstance(test, ir.Name) and test.id not in loop_vars:
            defs = self.info.defs.get(test.id, [])
            if len(defs) == 1:
                return self.iteration_condition(defs[0], depth + 1)
            return None
        if not isinstance(test, ir.Compare) or len(test.ops) != 1:
            return None
        left, op, right = test.left, test.ops[0], test.rights[0]
        if _loop_var(left, loop_vars):
            var_side, other = left, right
        elif _loop_var(right, loop_vars):
            var_side, other = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        else:
            return None
        loop = loop_vars[_loop_var(var_side, loop_vars)]
        plus_one = isinstance(var_side, ir.BinOp)
        if isinstance(other, ir.Const) and isinstance(other.value, int) and not isinstance(other.value, bool):
            c = other.value - (1 if plus_one else 0)
            if (op == "==" and c == 0) or (op == "<" and c == 1) or (op == "<=" and c == 0):
                return loop, "first"
            if (op in ("!=", ">") and c == 0) or (op == ">=" and c == 1) or (op == "==" and c >= 1):
                return loop, "later"
            return None
        if op in ("==", ">="):
            # against `epochs - 1`, `len(chunks) - 1`, `n_epochs`: the last iteration
            return loop, "later"
        return None

    def loop(self, s: ir.Loop, st: State) -> None:
        iter_origins = self.ev(s.iter, st) if s.kind == "for" and s.iter is not None else frozenset()
        times = 2 if len(self.loops) < MAX_LOOP_DEPTH else 1
        first_event = len(self.events)
        for it in range(1, times + 1):
            if it == 2 and not any(e.kind in _ORDERED_KINDS for e in self.events[first_event:]):
                break  # nothing in the body is ordered against anything: one pass says it all
            self.loops.append((s, it))
            if s.kind == "while" and s.iter is not None:
                self.ev(s.iter, st)
            if s.kind == "for" and s.target is not None:
                names = frozenset(target_names(s.target))
                bound = set()
                for o in iter_origins:
                    if o.is_data:
                        elem = self.make_elem(f"<item of loop@{s.lid}>", names | (s.iter.names if s.iter is not None else frozenset()))
                        bound.add(_extend(o, (elem,)))
                    else:
                        bound.add(o)
                for n in names:
                    st.env[n] = frozenset(bound)
            self.block(s.body, st)
            self.loops.pop()
            if st.dead:
                # the body returned on this path; the loop may also end normally (or not run)
                st.dead = False
                break
        self.collapse(s, st)
        self.block(s.orelse, st)

    def collapse(self, loop: ir.Loop, st: State) -> None:
        """After a loop, what it did per iteration covers the whole range it went over."""
        lid = loop.lid

        def widen(o: Origin) -> Origin:
            # the first step chosen per iteration becomes "what the loop went over"; the
            # steps after it keep selecting within each of those (`doc[b]` then its chunk
            # `[co:co + cl]`), no longer tied to one iteration
            for i, e in enumerate(o.path):
                if not any(t[0] == lid for t in e.tags):
                    continue
                outer = tuple(t for t in e.tags if t[0] != lid)
                if not outer and i == len(o.path) - 1:
                    return Origin(o.root, o.path[:i], o.via)
                rest = tuple(Elem(r.text, tuple(t for t in r.tags if t[0] != lid), r.names) for r in o.path[i + 1:])
                return Origin(o.root, o.path[:i] + (Elem(f"<loop@{lid}>", outer),) + rest, o.via)
            return o

        scored: dict[Origin, Event] = {}
        for k, v in st.scored.items():
            scored.setdefault(widen(k), v)
        st.scored = scored
        adapted: dict[Origin, Adapt] = {}
        for k, v in st.adapted.items():
            w = widen(k)
            mine = adapted.get(w)
            if mine is None:
                adapted[w] = v
            elif mine.scored and not v.scored:
                adapted[w] = v
        st.adapted = adapted

    # ---- expressions
    def ev(self, x: ir.X | None, st: State) -> frozenset:
        if x is None:
            return frozenset()
        if isinstance(x, ir.Name):
            return self.name(x.id, st)
        if isinstance(x, ir.Const):
            out = frozenset()
            if isinstance(x.value, str):
                out = _file_origins(x.value)
            for part in x.parts:
                out |= self.ev(part, st)
            return out
        if isinstance(x, ir.Attr):
            base = self.ev(x.base, st)
            if x.attr in SIZE_ATTRS:
                return frozenset()
            if x.attr in _TENSOR_ATTRS:
                return base
            # attributes set somewhere (`self.val_tokens = ...`, a class attribute of the
            # Hyperparameters block) or named by convention (`args.val_files`)
            self.a.attr_readers.setdefault(x.attr, set()).add(self.func)
            known = self.a.attr_env.get(x.attr)
            if known:
                return known
            return _convention(x.attr) or base
        if isinstance(x, ir.Call):
            return self.call(x, st)
        if isinstance(x, ir.Sub):
            base = self.ev(x.base, st)
            index_origins = frozenset()
            for i in x.index:
                index_origins |= self.ev(i, st)
            names = frozenset().union(*(i.names for i in x.index)) if x.index else frozenset()
            if not names:
                return base
            elem = self.make_elem("[" + ", ".join(ir.render(i) for i in x.index) + "]", names)
            out = set()
            for o in base:
                if o.is_data and o.via != "state":
                    out.add(_extend(o, (elem,)))
                else:
                    out.add(o)
            # a lookup keyed by data (a count table read at hash(tokens)) depends on that data
            out.update(index_origins)
            return frozenset(out)
        if isinstance(x, ir.Comp):
            binding: dict[str, frozenset] = {}
            saved_env: dict[str, frozenset | None] = {}
            for target, it, ifs in x.gens:
                it_origins = self.ev(it, st)
                for n in target_names(target):
                    binding[n] = it.names
                    saved_env[n] = st.env.get(n)
                    st.env[n] = it_origins
            self.comp_names.append(binding)
            out = frozenset()
            try:
                for _t, _it, ifs in x.gens:
                    for cond in ifs:
                        self.ev(cond, st)
                for e in x.elts:
                    out |= self.ev(e, st)
            finally:
                self.comp_names.pop()
                for n, old in saved_env.items():
                    if old is None:
                        st.env.pop(n, None)
                    else:
                        st.env[n] = old
            return out
        if isinstance(x, ir.Lambda):
            return frozenset()
        out = frozenset()
        for child in x.children():
            out |= self.ev(child, st)
        return out

    def name(self, name: str, st: State) -> frozenset:
        found = st.env.get(name)
        if found is not None:
            return found
        if "__class__." + name in st.env:
            return st.env["__class__." + name]
        if self.func.parent is not None and self._free(name):
            # a variable of the enclosing function: resolved where this closure is called
            return frozenset((Origin("F:" + name),))
        if not self.func.is_module:
            self.a.global_readers.setdefault(name, set()).add(self.func)
        found = self.a.global_env.get(name)
        if found is not None:
            return found
        return _convention(name)

    def _free(self, name: str) -> bool:
        f = self.func.parent
        while f is not None:
            if name in self.p.local_info(f).assigned or name in (p.lstrip("*") for p in f.params):
                return True
            f = f.parent
        return False

    def make_elem(self, text: str, names: frozenset) -> Elem:
        for binding in reversed(self.comp_names):
            extra = set()
            for n in names:
                if n in binding:
                    extra |= binding[n]
            if extra:
                names = names | frozenset(extra)
        tags = tuple((loop.lid, it) for loop, it in self.loops if names & self.a.varying(loop, self.func))
        return Elem(text, tags, names)

    # ---- calls
    def call(self, x: ir.Call, st: State) -> frozenset:
        fx = x.func
        receiver = frozenset()
        if isinstance(fx, ir.Attr):
            receiver = self.ev(fx.base, st)
        elif not isinstance(fx, ir.Name):
            receiver = self.ev(fx, st)
        args = [self.ev(a, st) for a in x.args]
        kwargs = {k: self.ev(v, st) for k, v in x.kwargs.items()}
        shape = self.a.call_shape(x, self.func)
        qual, method = shape.qual, shape.method
        everything = receiver.union(*args, *kwargs.values()) if (args or kwargs) else receiver
        site = Site(self.func, self.stmt, x)

        # effects recognised by the call's shape
        if method == "backward" or qual in ("torch.autograd.backward", "torch.autograd.grad"):
            loss_x = fx.base if method == "backward" and isinstance(fx, ir.Attr) else (x.args[0] if x.args else None)
            loss_origins = receiver if method == "backward" else (args[0] if args else frozenset())
            detail = "slot" if loss_x is not None and self._depends_on_slot(loss_x) else "weights"
            if detail == "weights" and _steps_only_local_modules(self.func, self.p, self.info):
                return frozenset()  # a probe or throwaway adapter: the scoring model is not updated
            self.event("update", site, loss_origins, st, detail=detail)
            return frozenset()
        if method == "load_state_dict" and x.args:
            self.restore(x.args[0], st, site)
            return frozenset()
        resolved = self.p.resolve(x, self.func)
        if qual in ("numpy.add.at", "np.add.at") or method in ("index_add_", "scatter_add_", "index_put_", "put_") \
                or (method in ("add_", "update") and resolved is None and isinstance(fx, ir.Attr) and _count_like(fx.base)):
            written = frozenset().union(*args) if args else frozenset()
            if resolved is None:
                written = self._selected_this_iteration(x, args, kwargs, written)
            self.event("cache", site, written, st, detail="cache")
            table = x.args[0] if qual.endswith("add.at") and x.args else (fx.base if isinstance(fx, ir.Attr) else None)
            if table is not None:
                self.store_into(table, _as_state(written), st)
            return frozenset()
        if method in ("append", "extend", "add_", "add", "insert", "copy_") and isinstance(fx, ir.Attr):
            name = container_name(fx.base)
            if name and (self.is_accumulator(name) or len(x.args) == 1 and self._loss_total(name, x.args[0], op_ok=True)):
                self.score(site, frozenset().union(*args) if args else frozenset(), st, name,
                           value=x.args[0] if len(x.args) == 1 else None)
                base = base_name(fx.base)
                if base:
                    st.env[base] = st.env.get(base, frozenset()) | self._score_marker(self.stmt)
                return frozenset()
            base = base_name(fx.base)
            if base and args:
                st.env[base] = st.env.get(base, frozenset()) | frozenset().union(*args)
        if shape.store and any(
                self.a.is_val(o, self.func) and o.via != "files" for a in args for o in a if o.is_data):
            # validation tokens written into the artifact (a "paid prefix")
            self.stores.append(Selection(site, frozenset(), tuple(self.loops)))
        if qual in WEIGHT_LOADS:
            self.event("load", site, frozenset(), st, detail=qual)
        if qual == "torch.save" and x.args:
            self.event("quant", site, frozenset(), st, detail="checkpoint" if _is_checkpoint(x.args[0]) else "torch.save")
            path = x.arg(1, "f")
            if isinstance(path, ir.Const) and isinstance(path.value, str) and _mentions_state(x.args[0]):
                st.snapshots["file:" + path.value] = self._weights(st)
            return frozenset()
        if shape.selection and len(_score_ids(everything)) >= 2:
            self.selections.append(Selection(site, _score_ids(everything), tuple(self.loops)))
        if shape.loss:
            self._candidate_grid(x, everything, site)
        if shape.size:
            return frozenset()
        if shape.env:
            # the default is what the code reads when the variable is unset
            return args[1] if len(args) > 1 else kwargs.get("default", frozenset())
        if shape.generate:
            return frozenset((Origin("GEN"),))

        if shape.closure_step:
            # `opt.step(closure)` runs the closure (L-BFGS and friends)
            for ax in x.args:
                if isinstance(ax, ir.Name):
                    target = self.p._lookup(self.func, ax.id)
                    if target is not None and target.kind == "function":
                        self.inline(target.target, False, ir.Call(None, ax, [], {}, ()), frozenset(), [], {}, st)  # type: ignore[arg-type]
        result: frozenset
        if resolved is not None and resolved.kind == "function":
            result = self.inline(resolved.target, resolved.bound, x, receiver, args, kwargs, st)  # type: ignore[arg-type]
        elif resolved is not None and resolved.kind == "class" or resolved is None and shape.constructor:
            init = self.p.class_method(resolved.target, "__init__") if resolved is not None else None  # type: ignore[arg-type]
            if init is not None:
                self.inline(init, True, x, receiver, args, kwargs, st)
            data = frozenset(o for o in frozenset().union(*args, *kwargs.values()) if o.is_data) if (args or kwargs) else frozenset()
            # an object built over data files (a token loader) hands out batches of them
            marker = f"loader#{id(x)}"
            if any(o.via == "files" for o in data):
                self.a.marker_sites[marker] = site
            result = frozenset(Origin(o.root, o.path, marker if o.via == "files" else o.via) for o in data)
        else:
            everything = self._selected_this_iteration(x, args, kwargs, everything)
            result = everything
            if not shape.path:
                # reading the files gives data, no longer file names
                result = frozenset(Origin(o.root, o.path, "") if o.via == "files" else o for o in result)
            if resolved is None and shape.eval_name and any(o.is_data for o in everything):
                # a scoring function the folder does not define (imported from elsewhere):
                # its name is all there is to go on
                self.score(site, everything, st, None, detail=method)
                result = frozenset(o for o in result if not o.is_data) | self._score_marker(self.stmt, call=x)
            if shape.stateful:
                tags = tuple((loop.lid, it) for loop, it in self.loops)
                result = frozenset(_extend(o, (Elem(f"<{method or qual}>", tags),))
                                   if o.is_data else o for o in result)
        if shape.quant:
            self.event("quant", site, frozenset(), st, detail=method or qual)
        if shape.read and any(o.is_data for o in everything):
            # which data it reads is decided by the rules (a parameter's origins may still be learnt)
            self.event("read", site, frozenset(o for o in everything if o.is_data), st, detail=method or qual)
        return result

    def _selected_this_iteration(self, x: ir.Call, args: list, kwargs: dict, origins: frozenset) -> frozenset:
        """The data a call we cannot read uses, narrowed to this loop iteration when the call
        also takes positions that change with the iteration: `score(tokens, np.arange(start,
        end))` then `cache.update(tokens, start, end)` touch the window of this pass, not the
        whole stream (the next pass's window is other tokens). Data that the call takes with
        no such positions stays whole."""
        if not self.loops:
            return origins
        selectors: list[ir.X] = []
        pairs = list(zip(x.args, args)) + [(x.kwargs[k], v) for k, v in kwargs.items()]
        for ax, ao in pairs:
            if not ax.names or any(o.is_data and self._tracked(o) for o in ao):
                continue
            if any(ax.names & self.a.varying(loop, self.func) for loop, _it in self.loops):
                selectors.append(ax)
        if not selectors:
            return origins
        names = frozenset().union(*(ax.names for ax in selectors))
        elem = self.make_elem("[" + ", ".join(ir.render(ax, limit=40) for ax in selectors) + "~]", names)
        if not elem.tags:
            return origins
        return frozenset(_extend(o, (elem,)) if o.is_data and not o.tags else o for o in origins)

    def inline(self, callee: ir.FunctionIR, bound: bool, x: ir.Call, receiver: frozenset, args: list, kwargs: dict,
               st: State) -> frozenset:
        exprs, receiver_param, _complete = bind_arguments(x, callee, bound)
        # each bound expression with the origins the caller computed for it
        positional_origins = {id(ax): ao for ax, ao in zip(x.args, args)}
        binding: dict[str, tuple[ir.X | None, frozenset]] = {}
        for pname, ax in exprs.items():
            if pname == receiver_param:
                binding[pname] = (ax, receiver)
            elif x.kwargs.get(pname) is ax:
                if pname in kwargs:
                    binding[pname] = (ax, kwargs[pname])
            elif id(ax) in positional_origins:
                binding[pname] = (ax, positional_origins[id(ax)])
        # parameters learn their origins from callers (concrete data only)
        summary = self.a.summaries.setdefault(callee, Summary())
        for pname, (_px, porigins) in binding.items():
            concrete = set()
            for o in porigins:
                if o.root in DATA_ROOTS:
                    concrete.add(o)
                elif o.root.startswith("P:"):
                    concrete |= self.a.concrete(o, self.func)
            if concrete:
                old = summary.param_actual.get(pname, frozenset())
                new = old | frozenset(Origin(c.root, tuple(Elem(e.text, (), e.names) for e in c.path), c.via)
                                      for c in concrete)
                if new != old:
                    summary.param_actual[pname] = new
                    self.a.stale_actuals.add(callee)
        self.a.call_records[id(x)] = CallRecord(self.func, self.stmt, x, callee, binding, tuple(self.loops))
        site = Site(self.func, self.stmt, x)
        entry_weights = self._weights(st)
        for ex in summary.exports:
            origins = self.translate(ex.origins, binding, st)
            if ex.kind in ("score", "update", "cache", "read") and not any(o.is_data for o in origins):
                continue
            inner = (ex.site, *ex.inner)
            if ex.kind == "score":
                self.score(site, origins, st, None, inner=inner, detail=callee.name)
            elif ex.kind in ("update", "cache"):
                self.event(ex.kind, site, origins, st, detail=ex.detail, inner=inner)
            elif ex.kind in ("quant", "load"):
                self.event(ex.kind, site, frozenset(), st, detail=ex.detail, inner=inner)
            elif ex.kind == "read":
                self.event("read", site, origins, st, detail=ex.detail, inner=inner)
        for pname in summary.restores:
            if pname in binding and binding[pname][0] is not None:
                self.restore(binding[pname][0], st, site)
        if summary.restores_entry:
            self._set_weights(st, entry_weights)
        result = self.translate(summary.returns, binding, st)
        if summary.returns_score:
            result = frozenset(o for o in result if o.root != "SCORE") | self._score_marker(self.stmt, call=x)
        return result

    def translate(self, origins: Iterable[Origin], binding: dict, st: State) -> frozenset:
        """Callee origins in the caller's terms: parameters become the arguments, and the
        slice texts name the caller's expressions."""
        subst = {p: ir.render(px) for p, (px, _o) in binding.items() if px is not None}
        out: set[Origin] = set()
        for o in origins:
            path = []
            for e in o.path:
                names = set(e.names)
                text = e.text
                hit = [p for p in names if p in subst]
                if hit:
                    text = _IDENT_RE.sub(lambda m: subst.get(m.group(0), m.group(0)), text)
                    for p in hit:
                        names.discard(p)
                        names |= binding[p][0].names
                path.append(self.make_elem(text, frozenset(names)))
            if o.root.startswith("P:"):
                pname = o.root[2:]
                if pname not in binding:
                    continue
                for a in binding[pname][1]:
                    if a.is_data or a.root == "SCORE":
                        out.add(_extend(a, tuple(path), a.via or o.via))
            elif o.root.startswith("F:"):
                for a in self.name(o.root[2:], st):
                    if a.is_data:
                        out.add(_extend(a, tuple(path), a.via or o.via))
            else:
                out.add(Origin(o.root, tuple(path), o.via))
        return frozenset(out)

    # ---- effects
    def is_accumulator(self, name: str) -> bool:
        """A loss accumulator whose total the function reports (returns, prints with the
        metric, or turns into a val_loss/val_bpb), not a training-loss statistic."""
        cached = self._accumulators.get(name)
        if cached is not None:
            return cached
        result = False
        if ACCUM_RE.search(name) and not NOT_ACCUM_RE.search(name):
            if self.func.is_module or name not in self.info.assigned:
                result = True  # module-level code, or an attribute (self.loss_sum)
            else:
                forward = self.info.closure_forward({name})
                result = bool(forward & self.info.sinks) or any(REPORTED_RE.search(n) for n in forward)
        self._accumulators[name] = result
        return result

    def _loss_total(self, name: str, value: ir.X | None, op_ok: bool = False) -> bool:
        """`total += loss.item()`, `scores.append(nll.item())`: a sum of losses under any name,
        when the function reports it."""
        if value is None or NOT_ACCUM_RE.search(name):
            return False
        if not op_ok and isinstance(self.stmt, ir.Assign) and self.stmt.op != "+":
            return False
        if not (any(ACCUM_RE.search(n) and not NOT_ACCUM_RE.search(n) for n in value.names)
                or self._computes_loss(value) or _model_loss_call(value)):
            return False
        forward = self.info.closure_forward({name})
        return bool(forward & self.info.sinks) or any(REPORTED_RE.search(n) for n in forward)

    def _reported(self, name: str) -> bool:
        """A value the function returns or prints as its metric (directly or through
        the names computed from it), e.g. `s1 = F.cross_entropy(...)` reported as val_loss."""
        if NOT_ACCUM_RE.search(name):
            return False
        forward = self.info.closure_forward({name})
        if any(n in self.info.accumulated and self.is_accumulator(n) for n in forward):
            return False  # an intermediate (`logp`, `nll`) of a score accumulated elsewhere
        return bool(forward & self.info.sinks) or any(REPORTED_RE.search(n) for n in forward)

    def _computes_loss(self, value: ir.X) -> bool:
        key = id(value)
        cached = self.a.loss_cache.get(key)
        if cached is None:
            cached = self.a.loss_cache[key] = self._computes_loss_uncached(value)
        return cached

    def _computes_loss_uncached(self, value: ir.X) -> bool:
        for y in ir.walk(value):
            if isinstance(y, ir.Call):
                name = last_part(self.p.qualify(y.func, self.func) or (y.func.attr if isinstance(y.func, ir.Attr) else ""))
                if name in _LOSS_CALLS:
                    return True
                r = self.p.resolve(y, self.func)
                if r is not None and r.kind == "function":
                    summary = self.a.summaries.get(r.target, Summary())
                    if any(e.kind == "score" for e in summary.exports):
                        return False  # the callee scores (and is accounted for) itself
                    if summary.returns_loss:
                        return True
        return False

    def _score_marker(self, stmt: ir.S | None, call: ir.Call | None = None) -> frozenset:
        ident = f"#{id(call) if call is not None else id(stmt)}"
        self.a.marker_sites[ident] = Site(self.func, stmt, call)
        return frozenset((Origin("SCORE", (Elem(ident),)),))

    def score(self, site: Site, origins: frozenset, st: State, acc: str | None, inner: tuple = (),
              detail: str = "", value: ir.X | None = None) -> None:
        # what is scored is the data itself, not state that earlier data built (a table)
        origins = frozenset(o for o in origins if o.via != "state")
        # the score is fixed when its value was computed: `loss = model(x, y); loss.backward();
        # opt.step(); loss_sum += loss.item()` reports the loss from before the update
        computed = self._value_time(value, st)
        ev = self.event("score", site, origins, st, detail=detail or (acc or ""), inner=inner)
        for o in _stable(ev.origins):
            if not o.is_data or not self._tracked(o):
                continue
            for key, ad in list(st.adapted.items()):
                if computed is not None and computed < ad.event.seq:
                    continue
                if ad.consumed_at is not None and ad.consumed_at == id(site.stmt):
                    continue  # the same scoring statement, later in its loop: the same pass
                if overlaps(o, key):
                    first = next((e for k, e in st.scored.items() if overlaps(k, o) and e.seq < ad.event.seq), None)
                    self.incident(ev, ad, o, first, widened=not _same_path(o.path, key.path, across_loops=False))
            if o not in st.scored:
                st.scored[o] = ev
            # adaptations this score came after are now on scored data: scoring the same
            # tokens again later is a second pass
            for key, ad in list(st.adapted.items()):
                if not ad.scored and overlaps(o, key):
                    st.adapted[key] = Adapt(ad.detail, True, ad.event, id(site.stmt))

    def _tracked(self, o: Origin) -> bool:
        """Validation data, or a parameter nothing tells us about (reported as undecided)."""
        if self.a.is_val(o, self.func):
            return True
        if o.root.startswith("P:"):
            name = o.root[2:]
            return bool(_TOKEN_PARAM_RE.search(name)) and not _SIZE_PARAM_RE.search(name) \
                and name not in _CONFIG_NAMES and not self.a.concrete(o, self.func)
        return False

    def _value_time(self, value: ir.X | None, st: State) -> int | None:
        """When the scored value was computed (the event clock), if it was computed earlier
        than now: only names of earlier values and cheap conversions (`.item()`, `.sum()`)."""
        if value is None:
            return None
        for y in ir.walk(value):
            if isinstance(y, ir.Call):
                name = ir.call_name(y)
                if name not in _CHEAP_CALLS:
                    return None  # computed right here
        times = [st.computed[n] for n in value.names if n in st.computed]
        return max(times) if times else None

    def event(self, kind: str, site: Site, origins: frozenset, st: State, detail: str = "",
              inner: tuple = ()) -> Event:
        data = _most_specific(frozenset(o for o in origins if o.is_data))
        ev = Event(EventKind(kind), site, data, detail, tuple(self.loops), self.a.next_seq(), inner, st.after_artifact)
        self.events.append(ev)
        if kind in ("update", "cache"):
            for o in _stable(data):
                if not self._tracked(o):
                    continue
                scored = any(covers(s, o) for s in st.scored) or self._scored_this_iteration(o, st)
                mine = st.adapted.get(o)
                # keep an unscored adaptation (the worse case); otherwise the latest one
                if mine is None or not scored or mine.scored:
                    if mine is None or mine.scored or not scored:
                        st.adapted[o] = Adapt(detail or kind, scored, ev)
        elif kind == "quant":
            self.quant_seqs.append(ev.seq)
            if not self.loops:  # a checkpoint inside the training loop is not the artifact
                st.wrote = True
                if not self.a.reads_back and detail != "checkpoint":
                    st.after_artifact = True
        elif kind == "load" and st.wrote:
            st.after_artifact = True
        return ev

    def _scored_this_iteration(self, o: Origin, st: State) -> bool:
        tags = o.tags
        if not tags:
            return False
        for s in st.scored:
            if s.root != o.root:
                continue
            stags = s.tags
            if stags and stags <= tags:
                return True
        return False

    def incident(self, score: Event, ad: Adapt, origin: Origin, first: Event | None = None,
                 widened: bool = False) -> None:
        upd = ad.event
        # loops both events sit in, with the iteration each happened in
        common = [(l, i_u, dict((id(x), j) for x, j in score.loops)[id(l)])
                  for l, i_u in upd.loops if any(x is l for x, _j in score.loops)]
        same_iteration = all(i_u == i_s for _l, i_u, i_s in common)
        if widened:
            # matched only through what a finished inner loop went over: that says something
            # only about a later iteration of an outer loop that does not select the data
            # (an epoch loop sees the same chunks again); a loop that does (a chunk loop)
            # moved on, and outside a common loop the match is too coarse to report
            moving = {t[0] for t in origin.tags}
            if same_iteration or ad.detail == "slot" or \
                    any(i_u != i_s and l.lid in moving for l, i_u, i_s in common):
                return
        if ad.detail == "slot":
            kind = "rescore_after_calibration" if ad.scored else "slot_scored_region"
        elif common and not same_iteration:
            # trained on in an earlier pass of a loop (an epoch) that scores the same data
            # again later: the scoring is not of the first encounter (whether or not the
            # earlier pass scored it too)
            kind = "score_after_epoch_update"
        elif ad.scored:
            kind = "rescore_after_adapt"
        else:
            kind = "update_before_score" if common else "adapt_before_score"
        key = (kind, id(score.site.stmt), id(upd.site.stmt), id(score.site.x), id(upd.site.x))
        uncertain = not self.a.is_val(origin, self.func)
        known = self._incident_keys.get(key)
        if known is not None:
            # the same pair of statements seen through other data: keep the validation
            # tokens over data of unknown origin (a window count next to the window)
            if self.incidents[known].uncertain and not uncertain:
                self.incidents[known] = replace(self.incidents[known], origin=origin, uncertain=False)
            return
        self._incident_keys[key] = len(self.incidents)
        loop = None
        if kind == "score_after_epoch_update":
            loop = next((l for l, i_u, i_s in common if i_u != i_s), None)
        elif common:
            loop = common[-1][0]
        elif score.loops:
            loop = score.loops[-1][0]
        quant = None
        for seq in self.quant_seqs:
            if upd.seq < seq < score.seq:
                quant = next((e for e in self.events if e.seq == seq), None)
                break
        self.incidents.append(Incident(IncidentKind(kind), self.func, score, upd, origin, loop, quant, first, uncertain))

    def _candidate_grid(self, x: ir.Call, origins: frozenset, site: Site) -> None:
        """A loss over validation data inside a loop over candidate values (temperatures,
        mixing weights) that the loss depends on: the same tokens scored once per candidate."""
        if not self.loops or not any(self.a.is_val(o, self.func) for o in origins if o.is_data):
            return
        used = self.info.closure_back(x.names)
        for loop, _it in self.loops:
            if loop.kind != "for" or loop.target is None or not _candidate_values(loop.iter, self.p, self.func):
                continue
            if set(target_names(loop.target)) & used:
                self.grids.append(Selection(site, frozenset(), tuple(self.loops), loop))
                return

    def _depends_on_slot(self, loss_x: ir.X) -> bool:
        slots = set(self.info.slot_tensors)
        f = self.func.parent
        while f is not None:
            slots |= self.p.local_info(f).slot_tensors - self.info.assigned
            f = f.parent
        if not slots:
            return False
        names = self.info.closure_back(loss_x.names)
        return bool(names & slots)

    # ---- weights snapshots
    def _weights(self, st: State) -> dict:
        return {k: v for k, v in st.adapted.items() if v.detail in ("weights",)}

    def _set_weights(self, st: State, weights: dict) -> None:
        for k, v in st.adapted.items():
            if v.detail == "weights" and weights.get(k) is not v:
                self.undone.add(v.event.seq)  # reloading earlier weights undoes this update
        st.adapted = {k: v for k, v in st.adapted.items() if v.detail not in ("weights",)}
        st.adapted.update(weights)

    def maybe_snapshot(self, name: str, value: ir.X, st: State) -> None:
        calls = self.a.calls_in(value)
        if not calls:
            return
        snap = self.a.mentions_state(value)
        restore_from = None
        if not snap:
            for y in calls:
                r = self.p.resolve(y, self.func)
                if r is not None and r.kind == "function" and self.a.summaries.get(r.target, Summary()).returns_state:
                    snap = True
                    break
        if snap:
            # `model = copy.deepcopy(base_model)`: reloading an earlier snapshot
            if isinstance(value, ir.Call) and last_part(self.p.qualify(value.func, self.func) or "") == "deepcopy":
                for n in value.names:
                    if n in st.snapshots and n != name:
                        restore_from = n
            if restore_from is not None:
                self._set_weights(st, st.snapshots[restore_from])
            st.snapshots[name] = self._weights(st)

    def restore(self, arg: ir.X, st: State, site: Site) -> None:
        # a copy: the closure may be shared, and file names are added below
        names = set(self.info.closure_back(arg.names))
        for y in ir.walk(arg):
            if isinstance(y, ir.Call) and last_part(self.p.qualify(y.func, self.func) or "") == "load" and y.args:
                path = y.args[0]
                if isinstance(path, ir.Const) and isinstance(path.value, str):
                    names.add("file:" + path.value)
        for n in list(names):
            for d in self.info.defs.get(n, ()):
                for y in ir.walk(d):
                    if isinstance(y, ir.Call) and last_part(self.p.qualify(y.func, self.func) or "") == "load" and y.args:
                        path = y.args[0]
                        if isinstance(path, ir.Const) and isinstance(path.value, str):
                            names.add("file:" + path.value)
        snaps = sorted(n for n in names if n in st.snapshots)
        if snaps:
            self._set_weights(st, st.snapshots[snaps[0]])
            if _snapshot_taken_at_entry(self, snaps[0]):
                self.restores_entry = True
            return
        params = {p.lstrip("*") for p in self.func.params}
        for n in names & params:
            self.restores.add(n)


def _snapshot_taken_at_entry(sim: Simulation, name: str) -> bool:
    """A snapshot assigned before any training in this function: restoring it undoes what the
    function did (a warmup that puts the initial weights back)."""
    for s in sim.func.body:
        if isinstance(s, ir.Assign) and any(isinstance(t, ir.Name) and t.id == name for t in s.targets):
            return True
        if any(isinstance(y, ir.Call) and isinstance(y.func, ir.Attr) and y.func.attr == "backward"
               for x in ir.statement_exprs(s) for y in ir.walk(x)):
            return False
        if isinstance(s, (ir.Loop, ir.With, ir.If, ir.Try)):
            for inner in ir.walk_statements([s]):
                for x in ir.statement_exprs(inner):
                    for y in ir.walk(x):
                        if isinstance(y, ir.Call) and isinstance(y.func, ir.Attr) and y.func.attr == "backward":
                            return False
    return False


def _loop_var(x: ir.X, loop_vars: dict[str, ir.Loop]) -> str | None:
    if isinstance(x, ir.Name) and x.id in loop_vars:
        return x.id
    if isinstance(x, ir.BinOp) and x.op == "+" and isinstance(x.left, ir.Name) and x.left.id in loop_vars \
            and isinstance(x.right, ir.Const) and x.right.value == 1:
        return x.left.id
    return None


def _model_loss_call(value: ir.X) -> bool:
    """`model(x, y)` or `model(t[:-1], t[1:])`: the baseline's models return the loss when
    given the targets."""
    for y in ir.walk(value):
        if not isinstance(y, ir.Call) or len(y.args) < 2:
            continue
        if any(isinstance(a, ir.Name) and TARGET_NAME_RE.match(a.id) or
               isinstance(a, ir.Sub) and isinstance(a.base, ir.Name) and TARGET_NAME_RE.match(a.base.id)
               for a in y.args[1:]):
            return True
        first, second = _strip_moves(y.args[0]), _strip_moves(y.args[1])
        if isinstance(first, ir.Sub) and isinstance(second, ir.Sub) and ir.render(first.base) == ir.render(second.base) \
                and _shift_pair(first, second):
            return True
    return False


def _strip_moves(x: ir.X) -> ir.X:
    """`t[1:].cuda()`, `t[1:].to(device)` -> `t[1:]`."""
    while isinstance(x, ir.Call) and isinstance(x.func, ir.Attr) and x.func.attr in ("cuda", "to", "long", "contiguous"):
        x = x.func.base
    return x


def _shift_pair(inputs: ir.Sub, targets: ir.Sub) -> bool:
    """The inputs drop the last position and the targets the first (`[:-1]` and `[1:]`)."""
    def last_slice(sub: ir.Sub):
        return sub.index[-1] if sub.index and isinstance(sub.index[-1], ir.Slice) else None
    a, b = last_slice(inputs), last_slice(targets)
    if a is None or b is None:
        return False
    return ir.render(a) == ":-1" and ir.render(b) == "1:"


def _constructor_name(qual: str) -> bool:
    """A class the folder does not define (imported): CamelCase, not a torch/numpy type."""
    last = last_part(qual)
    return bool(last) and last[0].isupper() and not last.isupper() and not qual.startswith(
        ("torch.", "numpy.", "np.", "nn.", "F.", "collections.", "pathlib.", "io."))


def _convention(name: str) -> frozenset:
    """Origins of a variable named like the baseline's data variables."""
    via = "files" if _FILE_VAR_RE.search(name) else ""
    if VAL_NAME_RE.match(name):
        return frozenset((Origin("VAL", (), via),))
    if TRAIN_NAME_RE.match(name):
        return frozenset((Origin("TRAIN", (), via),))
    return frozenset()


MAX_PATH = 4


def _extend(o: Origin, steps: tuple, via: str | None = None) -> Origin:
    """``o`` with further slice steps; paths stay short (a slice of a slice of a slice says
    all there is to say) and a step is not repeated, so values that are re-sliced each round
    (`history = (history + b)[-n:]`) reach a fixed point."""
    path = o.path
    for step in steps:
        if len(path) >= MAX_PATH or (path and path[-1] == step):
            break
        path = path + (step,)
    return Origin(o.root, path, o.via if via is None else via)


def _stable(origins: Iterable[Origin]) -> list[Origin]:
    """Origins in a fixed order: validation data first, then by name and path. Set order
    follows string hashing, which changes from one process to the next; what is found
    first must not."""
    return sorted(origins, key=lambda o: (o.root != "VAL", o.root, o.via, tuple(e.text for e in o.path),
                                          tuple(e.tags for e in o.path)))


def _most_specific(origins: frozenset) -> frozenset:
    """Drop an origin when a more specific slice of the same data is also there: a helper
    that hashed `tokens[j - k]` and lost the slice on the way out should not make the whole
    stream look touched when `tokens[j]` says which part was."""
    if len(origins) < 2:
        return origins
    # every strict prefix of every origin's path, by root: an origin is dropped when its own
    # path is one of them (linear in the origins; path length is bounded by MAX_PATH)
    prefixes = {(o.root, o.path[:k]) for o in origins for k in range(len(o.path))}
    if not prefixes:
        return origins
    return frozenset(o for o in origins if (o.root, o.path) not in prefixes)


_EFFECT_METHODS = {"backward", "load_state_dict", "state_dict", "append", "extend", "add_", "insert", "copy_", "update",
                   "at", "index_add_", "scatter_add_", "index_put_", "put_", "save", "grad", "requires_grad_",
                   "next_batch", "deepcopy", "register_buffer", "step"}


def _has_effect_syntax(func: ir.FunctionIR, program: Program) -> bool:
    """Cheap syntactic test: could simulating this function find anything?"""
    cached = getattr(func, "_effect_syntax", None)
    if cached is not None:
        return cached
    result = False
    names = func.name_refs | func.attr_refs
    if any(VAL_NAME_RE.match(n) or TRAIN_NAME_RE.match(n) for n in names):
        result = True
    for s in ir.walk_statements(func.body):
        if result:
            break
        if isinstance(s, ir.Assign):
            if s.op is not None or any(isinstance(t, (ir.Sub, ir.Attr)) for t in s.targets):
                result = True
                break
        for top in ir.statement_exprs(s):
            for x in ir.walk(top):
                if isinstance(x, ir.Const) and isinstance(x.value, str) and (VAL_FILE_RE.search(x.value)
                                                                            or TRAIN_FILE_RE.search(x.value)):
                    result = True
                elif isinstance(x, ir.Call):
                    name = ir.call_name(x)
                    if name in _EFFECT_METHODS or name in _LOSS_CALLS or GENERATE_RE.search(name) \
                            or QUANT_CALL_RE.search(name) or READ_CALL_RE.search(name) or _EVAL_NAME_RE.search(name) \
                            or name in ("min", "max", "sorted") or x.kwargs.get("requires_grad") is not None:
                        result = True
                if result:
                    break
            if result:
                break
    func._effect_syntax = result  # type: ignore[attr-defined]
    return result


def _pass_through(func: ir.FunctionIR) -> Summary:
    """The summary of a function with no effects: what it returns comes from its inputs."""
    params = [p.lstrip("*") for p in func.params if p.lstrip("*") not in ("self", "cls")]
    summary = Summary(returns=frozenset(Origin("P:" + p) for p in params))
    summary.pass_through = True  # type: ignore[attr-defined]
    return summary


def _score_ids(origins: Iterable[Origin]) -> frozenset:
    return frozenset(o.path[0].text for o in origins if o.root == "SCORE" and o.path)


def _candidate_values(it: ir.X | None, program: Program, func: ir.FunctionIR) -> bool:
    """A literal list of numbers, or linspace/arange/logspace over floats."""
    if isinstance(it, ir.Seq) and it.items and all(
            isinstance(i, ir.Const) and isinstance(i.value, (int, float)) and not isinstance(i.value, bool)
            or isinstance(i, ir.UnOp) and isinstance(i.operand, ir.Const) for i in it.items):
        return any(isinstance(i, ir.Const) and isinstance(i.value, float) for i in it.items)
    if isinstance(it, ir.Call):
        name = last_part(program.qualify(it.func, func) or "")
        if name in ("linspace", "logspace", "geomspace"):
            return True
        if name in ("arange",) and any(isinstance(a, ir.Const) and isinstance(a.value, float) for a in it.args):
            return True
        if name in ("enumerate", "list", "tuple") and it.args:
            return _candidate_values(it.args[0], program, func)
    if isinstance(it, ir.Name):
        defs = program.local_info(func).defs.get(it.id, [])
        if len(defs) == 1 and not isinstance(defs[0], ir.Name):
            return _candidate_values(defs[0], program, func)
    return False


def _as_state(origins: frozenset) -> frozenset:
    return frozenset(Origin(o.root, o.path, "state") if o.is_data else o for o in origins)


def _file_origins(text: str) -> frozenset:
    if VAL_FILE_RE.search(text):
        return frozenset((Origin("VAL", (), "files"),))
    if TRAIN_FILE_RE.search(text):
        return frozenset((Origin("TRAIN", (), "files"),))
    return frozenset()


def _steps_only_local_modules(func: ir.FunctionIR, program: Program, info: LocalInfo) -> bool:
    """Every optimizer this function steps holds only the parameters of modules it built
    itself and lets go of (a linear probe, a warmup adapter that is deleted): its backward
    passes do not change the model that is scored. Decided once per function."""
    cached = getattr(func, "_local_only_updates", None)
    if cached is not None:
        return cached
    result = _steps_only_local_modules_uncached(func, program, info)
    func._local_only_updates = result  # type: ignore[attr-defined]
    return result


def _steps_only_local_modules_uncached(func: ir.FunctionIR, program: Program, info: LocalInfo) -> bool:
    stepped: set[str] = set()
    for call, _stmt in func.calls:
        if isinstance(call.func, ir.Attr) and call.func.attr == "step":
            name = base_name(call.func.base)
            if name is None:
                return False
            stepped.add(name)
    if not stepped:
        return False
    escaping: set[str] = set()
    for s in program.statements(func):
        if isinstance(s, ir.Assign) and s.value is not None:
            if any(isinstance(t, (ir.Attr, ir.Sub)) for t in s.targets) and isinstance(s.value, ir.Name):
                escaping.add(s.value.id)  # the module itself stored into an object or container
        elif isinstance(s, ir.Return) and s.value is not None:
            values = s.value.items if isinstance(s.value, ir.Seq) else [s.value]
            escaping |= {v.id for v in values if isinstance(v, ir.Name)}  # the module handed back
    for opt in stepped:
        defs = info.defs.get(opt, [])
        if len(defs) != 1 or not isinstance(defs[0], ir.Call) or "optim" not in (program.qualify(defs[0].func, func) or ""):
            return False
        held = defs[0].args[0] if defs[0].args else None
        roots = held.names if held is not None else frozenset()
        if not roots:
            return False
        for root in roots:
            root_defs = info.defs.get(root, [])
            if root in escaping or root in {p.lstrip("*") for p in func.params} or len(root_defs) != 1:
                return False
            made = root_defs[0]
            while isinstance(made, ir.Call) and isinstance(made.func, ir.Attr) and made.func.attr in ("to", "cuda", "float", "bfloat16"):
                made = made.func.base
            last = last_part(program.qualify(made.func, func) or "") if isinstance(made, ir.Call) else ""
            if not last or not last[0].isupper():
                return False  # not a module built here (`copy.deepcopy(model)` shares nothing, but is a copy)
    return True


def _is_checkpoint(saved: ir.X) -> bool:
    """``torch.save(model.state_dict(), path)``: the raw weights, saved to be measured or
    reloaded, not the compressed artifact the submission is scored on."""
    return isinstance(saved, ir.Call) and isinstance(saved.func, ir.Attr) and saved.func.attr == "state_dict"


def _reads_weights_back(program: Program) -> bool:
    """Whether the script loads saved weights anywhere (``torch.load`` and friends). Such a
    script evaluates what it reads back, so its evaluation starts at that read; a script that
    never reads back evaluates in memory from the first quantization or serialization."""
    for func in program.functions:
        for call, _stmt in func.calls:
            if (program.qualify(call.func, func) or "") in WEIGHT_LOADS:
                return True
    return False


def _mentions_state(x: ir.X) -> bool:
    for y in ir.walk(x):
        if isinstance(y, ir.Call):
            f = y.func
            if isinstance(f, ir.Attr) and f.attr in ("state_dict",):
                return True
            if isinstance(f, (ir.Attr, ir.Name)) and (f.attr if isinstance(f, ir.Attr) else f.id) == "deepcopy":
                return True
    return False


def _refers_to(value: ir.X, name: str) -> bool:
    for y in ir.walk(value):
        if isinstance(y, ir.Name) and y.id == name:
            return True
        if isinstance(y, ir.Attr) and y.attr == name:
            return True
    return False


def _count_like(x: ir.X) -> bool:
    name = container_name(x)
    return bool(name and COUNT_TABLE_RE.search(name))

"""PG110 cross-document-mixing."""

from __future__ import annotations

import re

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.engine.patterns import BOS_RE, TOKEN_IDS_RE
from pgolf_audit.engine.program import Site
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_MIXER_RE = re.compile(r"smear|shift|prev|lookback|lag|carry|mix|token_?shift", re.I)
_NOT_HIDDEN_RE = re.compile(r"logit|loss|nll|target|label|pred|mask|prob|lp$|logp", re.I)

_SMEAR = '''
import os
import torch
import torch.nn as nn


class Hyperparameters:
    smear_gate = bool(int(os.environ.get("SMEAR_GATE", "1")))


class SmearGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        g = torch.sigmoid(self.gate)[None, None, :]
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return (1 - g) * x + g * x_prev


class GPT(nn.Module):
    def __init__(self, args, dim=512, vocab=1024):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.smear = SmearGate(dim) if args.smear_gate else None

    def forward(self, input_ids):
        x = self.embed(input_ids)
        if self.smear is not None:
            x = self.smear(x)
        return x


model = GPT(Hyperparameters())
'''

_SMEAR_MASKED = _SMEAR.replace(
    "    def forward(self, x):\n        g = torch.sigmoid(self.gate)[None, None, :]\n"
    "        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)\n"
    "        return (1 - g) * x + g * x_prev",
    "    def forward(self, x, not_bos):\n        g = torch.sigmoid(self.gate)[None, None, :]\n"
    "        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)\n"
    "        return (1 - g) * x + g * x_prev * not_bos[..., None]",
).replace(
    "        if self.smear is not None:\n            x = self.smear(x)",
    "        if self.smear is not None:\n            not_bos = torch.ones_like(input_ids, dtype=x.dtype)\n"
    "            not_bos[:, 1:] = (input_ids[:, 1:] != BOS_ID).to(x.dtype)\n            x = self.smear(x, not_bos)",
)


class CrossDocumentMixing(AstRule):
    """A previous-token mixer (SmearGate, token shift) lets documents leak across BOS.

    What it checks:
        Functions that mix each position's hidden state with the previous position's (a
        one-step shift such as `torch.cat([zeros, x[:, :-1]], 1)`, `F.pad(x, (0, 0, 1, 0))`,
        `torch.roll(x, 1, dims=1)`) in a gate or blend, where neither the function nor its
        callers reference a BOS/document-boundary mask (`not_bos`, `bos_mask`, `input_ids !=
        BOS_ID`, `doc_start`). Token-id shifts (bigram hash inputs) and shifts of logits or
        targets for the loss are not mixers and are ignored.

    Why it breaks the rules:
        R-SMEAR-BOS: the last token of document N must not leak into the BOS position of
        document N+1; cocohearts blocked #1797 until `not_bos` masking was added to both the
        scoring and the TTT forward paths (#1851, #1855). Contested by part of the community
        (#1988), but enforced.

    Example:
        `x_prev = torch.cat([zeros, x[:, :-1]], 1); x = (1 - g) * x + g * x_prev` with no mask.

    Legal alternative:
        Multiply the shifted state (or the gate) by `not_bos = (input_ids[:, 1:] != BOS_ID)`
        in every forward path that scores or trains.

    Known limitations:
        A mask applied far from the mixer (in a caller of a caller) or named without "bos",
        "doc" or "boundary" is not recognised; such code is reported and needs a look.
    """

    CODE = "PG110"
    NAME = "cross-document-mixing"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-SMEAR-BOS", "R-EVAL-C1-CAUSAL")
    # The audit (~04-25) was held against #1797 itself, a PR opened on 04-22: submissions are
    # ordered by PR creation time (R-ORDER-CHRONO), so the ruling binds from that PR's date on.
    RULING = Ruling("R-SMEAR-BOS", date="2026-04-22",
                    source="cocohearts' audit of #1797 (issuecomment-4322526174, ~04-25), held against #1797 (opened 04-22)")

    VALID = [
        CodeCase("SmearGate with a not_bos mask from the caller", _SMEAR_MASKED),
        CodeCase("a bigram hash over token ids (not a hidden-state mix)", '''
            import torch


            def bigram_hash_ids(input_ids, buckets=16384):
                prev_ids = torch.cat([torch.zeros_like(input_ids[:, :1]), input_ids[:, :-1]], dim=1)
                return (prev_ids * 1000003 + input_ids) % buckets
            '''),
    ]
    INVALID = [
        CodeCase("SmearGate without a BOS mask", _SMEAR, line=17, message_contains=("BOS",)),
        CodeCase("SmearGate disabled in every logged run", _SMEAR, line=17, severity=Severity.INFO,
                 log_hyperparameters={"smear_gate": "False"}, message_contains=("smear_gate=False",)),
    ]

    def check(self, program):
        instance_calls = _instance_calls(program)
        for func in program.functions:
            if func.is_module or not _mixes(func):
                continue
            shifts = [(s, x) for s, x in _shifts(func, program)]
            if not shifts:
                continue
            if _masked(func, program, instance_calls):
                continue
            stmt, x = shifts[0]
            site = Site(func, stmt, x)
            yield self.hit(site, (
                f"{d.snippet(site)} at {d.where(site)} in `{func.qualname}` mixes each position with the previous "
                f"one and no BOS/document-boundary mask is applied, so the last token of one document leaks into "
                f"the next document's BOS position (R-SMEAR-BOS; enforced on #1797)"))


def _shifts(func, program):
    for s, x in program.expressions(func):
        if isinstance(x, ir.Sub) and _drops_last(x) and _hidden(x.base):
            yield s, x
        elif isinstance(x, ir.Call):
            name = ir.call_name(x)
            if name == "roll":
                # torch.roll(h, 1, dims=1) or h.roll(1, 1)
                as_function = isinstance(x.func, ir.Name) or ir.render(x.func.base) == "torch"
                target = (x.args[0] if x.args else None) if as_function else x.func.base
                shift = x.arg(1 if as_function else 0, "shifts")
                if isinstance(shift, ir.Const) and shift.value == 1 and _hidden(target):
                    yield s, x


def _drops_last(x: ir.Sub) -> bool:
    """`h[:, :-1]` or `h[..., :-1, :]`: all but the last position along the sequence axis."""
    for i, part in enumerate(x.index):
        if isinstance(part, ir.Slice) and part.lower is None and part.step is None and isinstance(part.upper, ir.UnOp) \
                and part.upper.op == "-" and isinstance(part.upper.operand, ir.Const) and part.upper.operand.value == 1:
            before = x.index[:i]
            return len(before) >= 1 and all(isinstance(b, ir.Slice) and not b.names or
                                            isinstance(b, ir.Const) and b.value is Ellipsis for b in before)
    return False


def _hidden(base: ir.X | None) -> bool:
    if base is None:
        return False
    names = [y.id for y in ir.walk(base) if isinstance(y, ir.Name)] + [y.attr for y in ir.walk(base) if isinstance(y, ir.Attr)]
    names = [n for n in names if n not in ("torch", "F", "nn", "self")]
    if not names:
        return False
    return not any(TOKEN_IDS_RE.search(n) or _NOT_HIDDEN_RE.search(n) for n in names)


def _mixes(func) -> bool:
    if _MIXER_RE.search(func.qualname):
        return True
    return bool({"sigmoid", "lerp", "gate"} & (func.attr_refs | func.name_refs))


def _masked(func, program, instance_calls) -> bool:
    if any(BOS_RE.search(n) for n in func.name_refs | func.attr_refs):
        return True
    if any(BOS_RE.search(p) for p in func.params):
        return True
    # the mask may be computed by the caller and passed in
    for caller, call, _stmt in program.callers.get(func, []) + instance_calls.get(func, []):
        info = program.local_info(caller)
        names = set()
        for a in [*call.args, *call.kwargs.values()]:
            names |= info.closure_back(a.names)
        names |= {k for k in call.kwargs}
        if any(BOS_RE.search(n) for n in names):
            return True
    return False


def _instance_calls(program):
    """`self.smear(x, mask)` where `self.smear = SmearGate(dim)`: calls that reach a
    module's forward through the attribute holding it."""
    holders: dict[str, list] = {}
    for func in program.functions:
        for s in ir.walk_statements(func.body):
            if isinstance(s, ir.Assign) and s.value is not None:
                for t in s.targets:
                    if isinstance(t, ir.Attr):
                        for y in ir.walk(s.value):
                            if isinstance(y, ir.Call):
                                r = program.resolve(y, func)
                                if r is not None and r.kind == "class":
                                    fwd = program.class_method(r.target, "forward") or program.class_method(r.target, "__call__")
                                    if fwd is not None:
                                        holders.setdefault(t.attr, []).append(fwd)
    calls: dict = {}
    for func in program.functions:
        for call, stmt in func.calls:
            if isinstance(call.func, ir.Attr) and call.func.attr in holders:
                for fwd in holders[call.func.attr]:
                    calls.setdefault(fwd, []).append((func, call, stmt))
    return calls

"""PG107 slot-on-scored-region."""

from __future__ import annotations

import re

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_SLOT = '''
import os
import torch
import torch.nn.functional as F

SLOT_STEPS = int(os.environ.get("SLOT_STEPS", "8"))


def eval_val_slot(model, val_tokens, seq_len, stride, batch, lr=0.01):
    loss_sum = 0.0
    starts = list(range(0, val_tokens.numel() - seq_len - 1, stride))
    for bi in range(0, len(starts), batch):
        ws = starts[bi : bi + batch]
        x = torch.stack([val_tokens[s : s + seq_len] for s in ws])
        y = torch.stack([val_tokens[s + 1 : s + seq_len + 1] for s in ws])
        mask = torch.zeros_like(y, dtype=torch.float32)
        mask[:, seq_len - stride :] = 1.0
        with torch.no_grad():
            hidden = model.hidden(x)
        delta = torch.zeros(len(ws), 1, hidden.size(-1), device=x.device, requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=lr)
        for _ in range(SLOT_STEPS):
            nll = F.cross_entropy(model.head(hidden + delta).flatten(0, 1), y.flatten(), reduction="none")
            loss = (nll.view_as(y) * mask).sum() / mask.sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            nll = F.cross_entropy(model.head(hidden + delta).flatten(0, 1), y.flatten(), reduction="none")
            loss_sum += (nll.view_as(y) * mask).sum().item()
    return loss_sum


if __name__ == "__main__":
    print(f"val_bpb:{eval_val_slot(model, val_tokens, 2048, 64, 32)}")
'''

_CONTEXT_ONLY = _SLOT.replace(
    "            loss = (nll.view_as(y) * mask).sum() / mask.sum()",
    "            loss = (nll.view_as(y) * ctx_mask).sum() / ctx_mask.sum()",
).replace(
    "        mask[:, seq_len - stride :] = 1.0",
    "        mask[:, seq_len - stride :] = 1.0\n        ctx_mask = 1.0 - mask",
)

_SELECTOR_RE = re.compile(r"mask|sel|region|weight|valid|keep", re.I)
_LOSS_NAME_RE = re.compile(r"nll|loss|logp|lp|ce|xent", re.I)


def _selectors(x: ir.X | None, func, program, depth: int = 0) -> set[str]:
    """Which positions a loss is taken over: mask names multiplied in or used as an index,
    and non-constant slices of the per-token losses."""
    out: set[str] = set()
    if x is None or depth > 3:
        return out
    info = program.local_info(func)
    for y in ir.walk(x):
        if isinstance(y, ir.BinOp) and y.op in ("*", "/"):
            for side in (y.left, y.right):
                for z in ir.walk(side):
                    if isinstance(z, ir.Name) and _SELECTOR_RE.search(z.id):
                        out.add("name:" + z.id)
        elif isinstance(y, ir.Sub) and any(_LOSS_NAME_RE.search(n) for n in y.base.names):
            if len(y.index) == 1 and isinstance(y.index[0], ir.Name):
                out.add("name:" + y.index[0].id)
            elif any(isinstance(i, ir.Slice) and i.names for i in y.index):
                out.add("slice:" + ", ".join(ir.render(i) for i in y.index))
    for name in x.names:
        # follow the per-token losses and masks, not the data they were computed from
        if name in info.slot_tensors or not (_LOSS_NAME_RE.search(name) or _SELECTOR_RE.search(name)):
            continue
        for value in info.defs.get(name, ())[:3]:
            out |= _selectors(value, func, program, depth + 1)
    return out


_CONTEXT_SLOT_RULING = Ruling("R-SLOT-CONTEXT-ONLY", source="#1336 (never ruled on)", disputed=True)


class SlotOnScoredRegion(AstRule):
    """A per-window delta or logit bias is optimised against the targets it then scores (SLOT).

    What it checks:
        Tensors created in evaluation code with `requires_grad=True` (hidden-state deltas
        `zeros(bsz, 1, d)`, logit biases `zeros(bsz, 1, V)`, adapters) and optimised with
        `loss.backward()` on validation windows, followed by scoring of the same windows
        with the optimised tensor. When the optimisation loss covers the scored positions
        (the same mask or slice as the score, or the whole window) it is an error; when it
        covers only context positions that differ from the scored ones it is a warning.

    Why it breaks the rules:
        R-SLOT-NO-SCORED-REGION: optimising on `(nll * mask).sum()` with `mask[i, s:wlen] = 1`
        and then reporting the NLL recomputed with the optimised delta uses the targets to
        score themselves (C1 and C3); #1240's flip test showed 100% cross-position
        dependence. Closed: #1229, #1329, #1430, #675, #1722, #1376. Context-only SLOT and
        ETLB (R-SLOT-CONTEXT-ONLY, R-ETLB) were never ruled on: needs a maintainer.

    Example:
        `delta = torch.zeros(bsz, 1, d, requires_grad=True)`; AdamW for SLOT_STEPS on
        `(nll * mask).sum()`; then `loss_sum += (nll_with_delta * mask).sum()`.

    Legal alternative:
        No per-window optimisation at evaluation time, or score-first TTT (PG101's legal
        loop) that only trains on tokens already scored.

    Known limitations:
        Which positions a loss covers is read from mask names and slices; masks built by
        helper functions are compared by name only. A delta warm-started across windows is
        only flagged when its loss overlaps the scored positions.
    """

    CODE = "PG107"
    NAME = "slot-on-scored-region"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-SLOT-NO-SCORED-REGION", "R-SLOT-CONTEXT-ONLY", "R-EVAL-C1-CAUSAL")
    RULING = Ruling("R-SLOT-NO-SCORED-REGION", source="#1240 flip test; closures of #1229/#1329/#1430; #1017 C1/C3")
    NEEDS_SCORING_PASS = True

    VALID = [
        CodeCase("a logit bias fitted on training tokens (part of the artifact, inside training)", '''
            import torch


            def fit_bias_on_train(model, train_tokens, steps=100):
                bias = torch.zeros(model.vocab_size, requires_grad=True)
                opt = torch.optim.Adam([bias], lr=1e-3)
                for i in range(steps):
                    x = train_tokens[i * 2048 : (i + 1) * 2048]
                    y = train_tokens[i * 2048 + 1 : (i + 1) * 2048 + 1]
                    loss = model.loss_with_bias(x, y, bias)
                    loss.backward()
                    opt.step()
                return bias.detach()
            '''),
        CodeCase("plain sliding-window scoring", '''
            import torch
            import torch.nn.functional as F


            @torch.no_grad()
            def eval_val_sliding(model, val_tokens, seq_len, stride):
                loss_sum = 0.0
                for s in range(0, val_tokens.numel() - seq_len - 1, stride):
                    x = val_tokens[s : s + seq_len]
                    y = val_tokens[s + 1 : s + seq_len + 1]
                    nll = F.cross_entropy(model(x[None])[0], y, reduction="none")
                    loss_sum += nll[-stride:].sum().item()
                return loss_sum
            '''),
    ]
    INVALID = [
        CodeCase("SLOT: a per-window delta optimised on the scored mask, then rescored", _SLOT, line=24,
                 message_contains=("delta", "line 29")),
        CodeCase("context-only SLOT (loss on the context mask, never ruled on)", _CONTEXT_ONLY, line=25,
                 severity=Severity.WARNING, message_contains=("context",)),
        CodeCase("SLOT disabled in every logged run", _SLOT, line=24, severity=Severity.INFO,
                 log_hyperparameters={"SLOT_STEPS": "0"}, message_contains=("disabled in every logged run",)),
    ]

    def check(self, program):
        for inc in program.analysis.all_incidents():
            if inc.kind != "slot_scored_region":
                continue
            upd, score = inc.update, inc.score
            func = upd.site.func
            loss_x = upd.site.x.func.base if isinstance(upd.site.x, ir.Call) and isinstance(upd.site.x.func, ir.Attr) else None
            score_x = score.site.stmt.value if isinstance(score.site.stmt, (ir.Assign, ir.ExprS)) else None
            loss_sel = _selectors(loss_x, func, program)
            score_sel = _selectors(score_x, score.site.func, program)
            tensors = sorted(program.local_info(func).slot_tensors) or ["a local tensor"]
            tensor_words = ", ".join(f"`{t}`" for t in tensors[:3])
            # the step loop around the backward is the optimisation; what is optimised is the window
            weights = [(ir.Name(None, n), func) for n in _step_counts(upd, program)]
            if loss_sel and score_sel and not (loss_sel & score_sel):
                message = (
                    f"{tensor_words} optimised by {d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} on "
                    f"{', '.join(sorted(s.split(':', 1)[1] for s in loss_sel))} (context positions) before the "
                    f"window is scored at {d.where(score.site)}: context-only SLOT was never ruled on and needs a "
                    f"maintainer's decision (R-SLOT-CONTEXT-ONLY, #1336)"
                )
                yield self.hit(upd.site, message, severity=Severity.WARNING, related=d.related_sites(score, upd),
                               ruling=_CONTEXT_SLOT_RULING,
                               weights=weights)
                continue
            region = ", ".join(sorted(s.split(":", 1)[1] for s in (loss_sel & score_sel))) or "the whole window"
            message = (
                f"{tensor_words} optimised by {d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} against the "
                f"loss on {region}, the same positions then scored by {d.snippet(score.site)} at "
                f"{d.where(score.site)}: the per-window delta/bias sees the targets it is scored on "
                f"(R-SLOT-NO-SCORED-REGION, R-EVAL-C1-CAUSAL; #1240)"
            )
            yield self.hit(upd.site, message + d.uncertainty(inc), related=d.related_sites(score, upd), weights=weights,
                           severity=Severity.WARNING if inc.uncertain else None,
                           values={"update_line": upd.site.line(), "score_line": score.site.line()})


def _step_counts(upd, program) -> list[str]:
    """Names of the step counts of the loops around the optimisation (`for _ in
    range(SLOT_STEPS)`): zero steps means no optimisation."""
    names = []
    for loop, _it in upd.loops:
        if loop.kind == "for" and isinstance(loop.iter, ir.Call) and ir.render(loop.iter.func) == "range" \
                and len(loop.iter.args) == 1 and isinstance(loop.iter.args[0], (ir.Name,)):
            names.append(loop.iter.args[0].id)
    return names

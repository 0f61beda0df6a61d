"""PG103 second-scoring-pass."""

from __future__ import annotations

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_MULTI_EPOCH = '''
import torch


def eval_doc_ttt(model, val_tokens, doc_bounds, args):
    nll_sum, n_tokens = 0.0, 0
    for lo, hi in doc_bounds:
        doc = val_tokens[lo : hi + 1]
        lora = model.new_lora()
        opt = torch.optim.Adam(lora.parameters(), lr=args.ttt_lr)
        for epoch in range(args.ttt_epochs):
            loss = model(doc[:-1], doc[1:], lora=lora)
            if epoch == args.ttt_epochs - 1:
                nll_sum += loss.item() * (hi - lo)
                n_tokens += hi - lo
            loss.backward()
            opt.step()
            opt.zero_grad()
    return nll_sum / n_tokens
'''

_FIRST_ENCOUNTER = _MULTI_EPOCH.replace("if epoch == args.ttt_epochs - 1:", "if epoch == 0:")

# every epoch walks the document's chunks score-first, but from the second epoch on each
# chunk was trained on in the epoch before; the last epoch's loss is reported (#568)
_EPOCHS_OVER_CHUNKS = '''
import torch


def eval_doc_chunks_ttt(model, val_tokens, doc_bounds, args):
    nll_sum = 0.0
    for lo, hi in doc_bounds:
        lora = model.new_lora()
        opt = torch.optim.Adam(lora.parameters(), lr=args.ttt_lr)
        doc_nll = 0.0
        for epoch in range(args.ttt_epochs):
            doc_nll = 0.0
            for c in range(lo, hi, args.chunk):
                x = val_tokens[c : c + args.chunk]
                y = val_tokens[c + 1 : c + args.chunk + 1]
                loss = model(x, y, lora=lora)
                doc_nll += loss.item()
                loss.backward()
                opt.step()
                opt.zero_grad()
        nll_sum += doc_nll
    return nll_sum


def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    print(f"final val_loss:{eval_doc_chunks_ttt(model, val_tokens, find_docs(val_tokens), args):.8f}")


main()
'''

_TWO_PASS = '''
def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    loss_s0, bpb_s0 = eval_val_score_first_ttt(model, val_tokens, args)
    loss_s1, bpb_s1 = eval_val_sliding(model, val_tokens, args)
    print(f"final val_bpb:{bpb_s1:.8f}")


def eval_val_score_first_ttt(model, val_tokens, args):
    loss_sum = 0.0
    for s in range(0, val_tokens.numel() - 1, args.chunk):
        x, y = val_tokens[s : s + args.chunk], val_tokens[s + 1 : s + args.chunk + 1]
        with torch.no_grad():
            loss_sum += model(x, y).item()
        model(x, y).backward()
        opt.step()
    return loss_sum, loss_sum


main()
'''

_KEEP_BEST = '''
def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    bpb_sliding = eval_val_sliding(model, val_tokens)
    bpb_ttt = eval_val_ttt(model, val_tokens)
    val_bpb = min(bpb_sliding, bpb_ttt)
    print(f"final val_bpb:{val_bpb:.8f}")


main()
'''

_TEMPERATURE_GRID = '''
import torch
import torch.nn.functional as F


def calibrated_eval(logits, val_targets):
    best_t, best_loss = 1.0, float("inf")
    for t in [0.90, 0.95, 0.98, 1.00, 1.02]:
        loss = F.cross_entropy(logits / t, val_targets)
        if loss.item() < best_loss:
            best_t, best_loss = t, loss.item()
    return best_loss
'''


def scoring_script(flags: str, body: str) -> str:
    """An example script: ``flags`` read from the environment, the one-pass ``eval_val`` the
    examples score with, then ``body`` (its functions and ``main``)."""
    body = body.lstrip("\n")
    return f"\nimport os\nimport torch\n\n{flags}\n\n\n{_EVAL_VAL}\n\n{body}"


_EVAL_VAL = '''def eval_val(model, val_tokens):
    loss_sum = 0.0
    with torch.inference_mode():
        loss_sum += model(val_tokens[:-1], val_tokens[1:]).item()
    return loss_sum
'''


_GUARDED_UPDATE = scoring_script(
    flags='ttt_rank = int(os.environ.get("TTT_RANK", "0"))',
    body='''
def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    print("starting the final evaluation passes")
    first = eval_val(model, val_tokens)
    if ttt_rank > 0:
        model(val_tokens[:-1], val_tokens[1:]).backward()
        opt.step()
    final = eval_val(model, val_tokens)
    print(f"final val_bpb:{final:.8f}")


main()
''')

_STRIDE_BRANCH = scoring_script(
    flags='eval_stride = int(os.environ.get("EVAL_STRIDE", "64"))',
    body='''
def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    bpb = eval_val(model, val_tokens)
    print(f"final_sliding_window val_bpb:{bpb:.4f} stride:{eval_stride} eval_time:{0}ms")
    model(val_tokens[:-1], val_tokens[1:]).backward()
    opt.step()
    if eval_stride != 64:
        bpb64 = eval_val(model, val_tokens)
        print(f"final_sliding_window_s64 val_bpb:{bpb64:.4f} stride:64 eval_time:{0}ms")


main()
''')


_ELSE_BRANCH = scoring_script(
    flags='eval_stride = int(os.environ.get("EVAL_STRIDE", "64"))',
    body='''
def eval_val_sliding(model, val_tokens, stride):
    print(f"sliding_eval [windows of stride {stride}]")
    return eval_val(model, val_tokens)


def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    first = eval_val(model, val_tokens)
    print("test-time training on the scored tokens")
    model(val_tokens[:-1], val_tokens[1:]).backward()
    opt.step()
    if eval_stride > 0:
        final = eval_val_sliding(model, val_tokens, eval_stride)
    else:
        final = eval_val(model, val_tokens)
    print(f"final val_bpb:{final:.8f}")


main()
''')


class SecondScoringPass(AstRule):
    """Validation tokens are scored again after adaptation, or the better of passes is kept.

    What it checks:
        Any scoring of validation data that comes after the same data was scored and then
        adapted on (a second pass after TTT or after a cache is complete), scoring inside a
        loop that revisits the same chunks in later epochs (`if epoch == E - 1: loss_sum +=
        nll`), re-scoring after a temperature/calibration fitted on the scored tokens,
        `min()`/comparisons that keep the better of two scoring passes, and a loss over
        validation tokens computed once per candidate value (temperature grid search).

    Why it breaks the rules:
        R-EVAL-C4-SINGLE-PASS / R-MULTIPASS-NO-RESCORE: each token is scored once, in one
        left-to-right pass; #991 was closed for reporting s_1 (the re-score after TTT) plus a
        T=0.98 calibration; the two-pass n-gram family (#846, #870, #986, #959) was closed.
        R-TTT-NO-MULTIEPOCH-RESCORE: with multi-epoch TTT only first-encounter scores count
        (valerio-oai on #568).

    Example:
        `for epoch in range(E): for chunk in chunks: if epoch == E - 1: loss_sum += nll; train(chunk)`.

    Legal alternative:
        One loop over chunks that scores each chunk once before training on it; with
        several epochs, score only in the first (`if epoch == 0`) or score before the epoch
        loop. Report the first pass's number.

    Known limitations:
        A second pass on a freshly loaded artifact is legal only when the weights really are
        reset; reloading from a path the script did not write is not recognised as a reset.
        Selections are recognised through `min`/`max`/`sorted` and `if a < b` only.
    """

    CODE = "PG103"
    NAME = "second-scoring-pass"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-EVAL-C4-SINGLE-PASS", "R-MULTIPASS-NO-RESCORE", "R-TTT-NO-MULTIEPOCH-RESCORE")
    RULING = Ruling("R-EVAL-C4-SINGLE-PASS", source="valerio-oai on #568 and #991; #1017 C4")
    NEEDS_SCORING_PASS = True

    VALID = [
        CodeCase("per-document multi-epoch TTT scoring only the first epoch", _FIRST_ENCOUNTER),
        CodeCase("epochs over a document's chunks, scored only in the first epoch",
                 _EPOCHS_OVER_CHUNKS.replace("                doc_nll += loss.item()",
                                             "                if epoch == 0:\n                    doc_nll += loss.item()")),
        CodeCase("a sliding-window pass, then score-first TTT on the reloaded artifact", '''
            def main():
                val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
                blob = serialize_artifact(model)
                loss_sw, bpb_sw = eval_val_sliding(model, val_tokens)
                load_artifact(blob, model)
                loss_ttt, bpb_ttt = eval_val_score_first_ttt(model, val_tokens)
                print(f"final val_bpb:{bpb_ttt:.8f}")


            def eval_val_score_first_ttt(model, val_tokens):
                loss_sum = 0.0
                for s in range(0, val_tokens.numel() - 1, 65536):
                    x, y = val_tokens[s : s + 65536], val_tokens[s + 1 : s + 65537]
                    with torch.inference_mode():
                        loss_sum += model(x, y).item()
                    model(x, y).backward()
                    opt.step()
                return loss_sum, loss_sum


            main()
            '''),
        # each pass scores the window of its own loop iteration, then counts it: the next
        # pass's window holds other tokens, so nothing is scored twice
        CodeCase("score-first over windows named by positions, with helpers the folder does not define", '''
            import numpy as np


            def chunked_eval(tokens, chunk, score_fn, cache):
                loss = 0.0
                for start in range(1, len(tokens), chunk):
                    end = min(start + chunk, len(tokens))
                    p = score_fn(tokens, np.arange(start, end), cache)
                    loss += float((-np.log(p)).sum())
                    cache.update(tokens, start, end)
                return loss


            def main():
                tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
                print(f"final val_bpb:{chunked_eval(tokens, 4096, score_ngram, NgramCache()):.8f}")


            main()
            '''),
    ]
    INVALID = [
        CodeCase("per-document LoRA TTT reporting the last epoch's loss", _MULTI_EPOCH, line=13,
                 message_contains=("epoch", "line 15")),
        CodeCase("epochs over a document's chunks, each scored first in every epoch, reporting the last",
                 _EPOCHS_OVER_CHUNKS, line=16, message_contains=("earlier epoch", "line 17", "line 10")),
        CodeCase("score-first TTT, then a sliding-window re-score of the adapted model", _TWO_PASS, line=4,
                 message_contains=("line 3",)),
        CodeCase("the better of a sliding and a TTT pass", _KEEP_BEST, line=5, message_contains=("min",)),
        CodeCase("temperature grid search on validation targets", _TEMPERATURE_GRID, line=8,
                 message_contains=("candidate",)),
        # a line the scoring function's caller prints either way shows the re-score ran, not
        # the update before it: the update's own flag, off in the log, decides
        CodeCase("a re-score after an update whose flag the log shows off", _GUARDED_UPDATE, line=21,
                 severity=Severity.INFO, log_hyperparameters={"ttt_rank": "0"},
                 log_lines=("starting the final evaluation passes",),
                 message_contains=("disabled in every logged run", "ttt_rank=0")),
        # `stride:64 eval_time:` also matches the line the first pass printed with its
        # variable stride: no evidence that the `!= 64` branch ran
        CodeCase("an extra pass behind `eval_stride != 64` with the log at stride 64", _STRIDE_BRANCH, line=21,
                 severity=Severity.INFO, log_hyperparameters={"eval_stride": "64"},
                 log_lines=("final_sliding_window val_bpb:1.1200 stride:64 eval_time:5000ms",),
                 message_contains=("disabled in every logged run", "eval_stride=64")),
        # the line the if-branch's pass prints is no evidence that the else branch ran
        CodeCase("a re-score in the else of `if eval_stride > 0` with the log at stride 64", _ELSE_BRANCH, line=28,
                 severity=Severity.INFO, log_hyperparameters={"eval_stride": "64"},
                 log_lines=("test-time training on the scored tokens", "sliding_eval [windows of stride 64]"),
                 message_contains=("disabled in every logged run", "eval_stride=64")),
    ]

    def check(self, program):
        analysis = program.analysis
        for inc in analysis.all_incidents():
            if inc.kind not in ("rescore_after_adapt", "score_after_epoch_update", "rescore_after_calibration"):
                continue
            upd, score = inc.update, inc.score
            if inc.kind == "score_after_epoch_update":
                loop = d.loop_site(inc)
                message = (
                    f"{d.snippet(score.site)} at {d.where(score.site)}{d.via(score)} scores {d.data(inc.origin)} in a "
                    f"later pass of the loop at {d.where(loop) if loop else '?'}, after {d.snippet(upd.site)} at "
                    f"{d.where(upd.site)}{d.via(upd)} trained on the same tokens in an earlier epoch: only the first "
                    f"encounter may be scored (R-TTT-NO-MULTIEPOCH-RESCORE)"
                )
                related = d.related_sites(upd, score, extra=[loop])
            else:
                first = inc.first_score
                before = f" (first scored at {d.where(first.site)})" if first is not None else ""
                if inc.kind == "rescore_after_calibration":
                    what = f"a temperature/calibration fitted on them by {d.snippet(upd.site)} at {d.where(upd.site)}"
                else:
                    what = f"{d.update_words(upd)} {d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)}"
                message = (
                    f"{d.snippet(score.site)} at {d.where(score.site)}{d.via(score)} scores {d.data(inc.origin)} "
                    f"again{before} after {what}: a second scoring pass with state built from the same tokens "
                    f"(R-EVAL-C4-SINGLE-PASS, R-MULTIPASS-NO-RESCORE)"
                )
                related = d.related_sites(upd, *( [first] if first else []), score)
            severity = Severity.WARNING if inc.uncertain else None
            message += d.uncertainty(inc)
            yield self.hit(score.site, message, severity=severity, related=related, also_guarded_by=d.path_sites(upd, score),
                           values={"score_line": score.site.line(), "update_line": upd.site.line()})
        for sel in analysis.all_selections():
            passes = [analysis.marker_sites[m] for m in sorted(sel.scores) if m in analysis.marker_sites]
            lines = ", ".join(sorted({d.where(p) for p in passes}))
            message = (
                f"{d.snippet(sel.site)} at {d.where(sel.site)} keeps the better of scoring passes ({lines}): the "
                f"reported score must be the single first pass (R-EVAL-C4-SINGLE-PASS)"
            )
            scored = [o for e in analysis.events.get(sel.site.func, ()) if e.kind == "score" for o in e.origins]
            severity = None
            if scored and not any(analysis.val_by_flow(o, sel.site.func) for o in scored):
                # the passes score a parameter named like validation data that no caller fills
                # with it (a temperature fitted on training tokens is legal)
                severity = Severity.WARNING
                message += " [the scored data is validation data by its name only; check what the callers pass]"
            yield self.hit(sel.site, message, related=passes, severity=severity)
        for grid in analysis.all_grids():
            loop = ir.render(grid.loop.iter, limit=60) if grid.loop is not None else "?"
            loop_site = d.Site(grid.site.func, grid.loop) if grid.loop is not None else None
            message = (
                f"{d.snippet(grid.site)} at {d.where(grid.site)} scores validation tokens once per candidate value "
                f"of the loop at {d.where(loop_site) if loop_site else '?'} (`{loop}`): fitting a temperature or "
                f"weight on the scored tokens is a second pass (R-EVAL-C4-SINGLE-PASS, #991)"
            )
            yield self.hit(grid.site, message, related=[loop_site] if loop_site else [])

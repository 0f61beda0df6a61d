"""PG101 update-before-score."""

from __future__ import annotations

from pgolf_audit.engine import describe as d
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_TRAIN_THEN_SCORE = '''
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, args):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum, count = 0.0, 0
    for start in range(0, val_tokens.numel() - 1, args.ttt_chunk):
        chunk = val_tokens[start : start + args.ttt_chunk + 1]
        x, y = chunk[:-1], chunk[1:]
        model.train()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        model.eval()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum").item()
        count += y.numel()
    return loss_sum / count
'''

_SCORE_FIRST = '''
import torch
import torch.nn.functional as F


def eval_val_ttt(model, val_tokens, args):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr, momentum=0.9)
    starts = list(range(0, val_tokens.numel() - 1, args.ttt_chunk))
    loss_sum, count = 0.0, 0
    for ci, start in enumerate(starts):
        chunk = val_tokens[start : start + args.ttt_chunk + 1]
        x, y = chunk[:-1], chunk[1:]
        model.eval()
        with torch.inference_mode():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum").item()
        count += y.numel()
        is_last_chunk = ci == len(starts) - 1
        if is_last_chunk:
            break
        model.train()
        for _ in range(args.ttt_epochs):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
    return loss_sum / count
'''

_HELPERS = '''
import os
import torch
import torch.nn.functional as F


class Hyperparameters:
    ttt_adapt_first = bool(int(os.environ.get("TTT_ADAPT_FIRST", "1")))
    ttt_chunk = int(os.environ.get("TTT_CHUNK", "32768"))


def adapt(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()


def score(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="sum").item()


def eval_val_ttt(model, val_tokens, args, opt):
    loss_sum = 0.0
    for start in range(0, val_tokens.numel() - 1, args.ttt_chunk):
        chunk = val_tokens[start : start + args.ttt_chunk + 1]
        if args.ttt_adapt_first:
            adapt(model, opt, chunk[:-1], chunk[1:])
        loss_sum += score(model, chunk[:-1], chunk[1:])
    return loss_sum


def main():
    args = Hyperparameters()
    print(f"val_bpb:{eval_val_ttt(model, val_tokens, args, opt)}")


if __name__ == "__main__":
    main()
'''


class UpdateBeforeScore(AstRule):
    """Test-time training updates on a chunk before that chunk is scored.

    What it checks:
        Inside a loop over validation chunks (or windows, or documents), the order of the
        effects in one iteration: a weight update (`loss.backward()` and the optimizer step,
        directly or through helper functions) or a cache update whose data is the chunk
        being scored, placed before the scoring of that chunk (the reported loss accumulator,
        e.g. `loss_sum += nll`). It also catches a score re-computed after the update
        replacing the one computed before it.

    Why it breaks the rules:
        R-TTT-SCORE-FIRST and R-EVAL-C3-SCORE-BEFORE-UPDATE: "only test-time train on
        validation tokens you've already evaluated" (README, 03-20). Training on a chunk and
        then scoring it is training on validation data (#402, R-TTT-NO-PREEVAL), even for a
        single step or a LoRA.

    Example:
        `for chunk in chunks: loss(chunk).backward(); opt.step(); loss_sum += nll(chunk)`.

    Legal alternative:
        Score the chunk under `torch.inference_mode()` first, then train on it (any number
        of epochs); the last chunk need not be trained on (`if is_last_chunk: break`). See
        the bundled example's `eval_val_score_first_ttt`.

    Known limitations:
        Data identity is syntactic: an update on `val_tokens[s:e]` and a score of the same
        tokens sliced differently (`val_tokens[a:b]` with `a == s`) are not matched, and an
        update that reaches past the scored chunk (`[s:e + lookahead]`) is not recognised as
        using unscored tokens.
    """

    CODE = "PG101"
    NAME = "update-before-score"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-TTT-SCORE-FIRST", "R-EVAL-C3-SCORE-BEFORE-UPDATE", "R-TTT-NO-PREEVAL")
    RULING = Ruling("R-TTT-SCORE-FIRST", source="README FAQ: test-time training only on tokens already scored (fc6332a9c, 03-20)")
    NEEDS_SCORING_PASS = True

    VALID = [
        CodeCase("score-first chunk loop with an is_last_chunk guard and several epochs per chunk", _SCORE_FIRST),
        CodeCase("the same loop inside an lzma/base85 self-extracting wrapper", _SCORE_FIRST, wrap="lzma-raw+b85"),
        CodeCase("training on the previous (already scored) chunk before scoring the next", '''
            import torch


            def eval_prev_chunk(model, val_tokens, opt, n):
                loss_sum, prev = 0.0, None
                for start in range(0, val_tokens.numel() - 1, n):
                    chunk = val_tokens[start : start + n + 1]
                    if prev is not None:
                        model(prev[:-1], prev[1:]).backward()
                        opt.step()
                    with torch.no_grad():
                        loss_sum += model(chunk[:-1], chunk[1:]).item()
                    prev = chunk
                return loss_sum
            '''),
        CodeCase("the loss computed before the step is the one accumulated after it (score-first in effect)", '''
            def eval_ttt_one_pass(model, val_tokens, opt, n):
                loss_sum = 0.0
                for start in range(0, val_tokens.numel() - 1, n):
                    chunk = val_tokens[start : start + n + 1]
                    loss = model(chunk[:-1], chunk[1:])
                    loss.backward()
                    opt.step()
                    opt.zero_grad()
                    loss_sum += loss.item()
                return loss_sum
            '''),
    ]
    INVALID = [
        CodeCase("train-then-score inside the chunk loop", _TRAIN_THEN_SCORE, line=13,
                 message_contains=("line 18", "before")),
        CodeCase("the update and the score through helper functions", _HELPERS, line=28,
                 message_contains=("adapt",)),
        CodeCase("the helper path disabled by a flag in every logged run", _HELPERS, line=28,
                 severity=Severity.INFO, log_hyperparameters={"ttt_adapt_first": "False"},
                 message_contains=("disabled in every logged run", "ttt_adapt_first=False")),
        CodeCase("the helper path enabled in the logged run", _HELPERS, line=28, severity=Severity.ERROR,
                 log_hyperparameters={"ttt_adapt_first": "True"}, message_contains=("enabled in",)),
        CodeCase("train-then-score in a wrapped script", _TRAIN_THEN_SCORE, line=13, wrap="lzma-raw+b85"),
    ]

    def check(self, program):
        for inc in program.analysis.all_incidents():
            if inc.kind != "update_before_score":
                continue
            upd, score = inc.update, inc.score
            loop = d.loop_site(inc)
            loop_words = f" in the loop at {d.where(loop)}" if loop is not None else ""
            message = (
                f"{d.update_words(upd)} {d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} uses "
                f"{d.data(inc.origin)} before the same data is scored by {d.snippet(score.site)} at "
                f"{d.where(score.site)}{d.via(score)}{loop_words}: within a chunk the score must come before any "
                f"update that uses it (R-TTT-SCORE-FIRST, R-EVAL-C3-SCORE-BEFORE-UPDATE)"
            )
            severity = Severity.WARNING if inc.uncertain else None
            message += d.uncertainty(inc)
            yield self.hit(upd.site, message, severity=severity, related=d.related_sites(score, upd, extra=[loop]),
                           also_guarded_by=d.path_sites(score, upd),
                           values={"update_line": upd.site.line(), "score_line": score.site.line(),
                                   "loop_line": loop.line() if loop else None})

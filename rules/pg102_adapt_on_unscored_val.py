"""PG102 adapt-on-unscored-val."""

from __future__ import annotations

from pgolf_audit.engine import describe as d
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

from .pg103_second_scoring_pass import scoring_script

_PREQUANT = '''
import os
import torch


class Hyperparameters:
    val_files = os.path.join(os.environ.get("DATA_PATH", "./data"), "fineweb_val_*.bin")
    prequant_ttt_epochs = int(os.environ.get("PREQUANT_TTT_EPOCHS", "3"))


def prequant_ttt_adapt_adamw(model, val_tokens, epochs, seq_len=2048):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    for _ in range(epochs):
        for s in range(0, val_tokens.numel() - seq_len - 1, seq_len):
            loss = model(val_tokens[s : s + seq_len], val_tokens[s + 1 : s + seq_len + 1])
            loss.backward()
            opt.step()
            opt.zero_grad()


def main():
    args = Hyperparameters()
    val_tokens = load_validation_tokens(args.val_files)
    if args.prequant_ttt_epochs > 0:
        prequant_ttt_adapt_adamw(model, val_tokens, args.prequant_ttt_epochs)
    blob = gptq_quantize_and_serialize(model, calibration_batches(model))
    load_quantized(model, blob)
    val_loss, val_bpb = eval_val_sliding(model, val_tokens)
    print(f"final val_bpb:{val_bpb:.8f}")


if __name__ == "__main__":
    main()
'''

_TRAIN_SLICE = '''
import torch


def adapt_on_train_slice(model, train_tokens, steps, seq_len=2048):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    for i in range(steps):
        x = train_tokens[i * seq_len : (i + 1) * seq_len]
        y = train_tokens[i * seq_len + 1 : (i + 1) * seq_len + 1]
        model(x, y).backward()
        opt.step()
        opt.zero_grad()


def main():
    train_tokens = load_data_shard("./data/fineweb10B_sp1024/fineweb_train_000079.bin")
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    adapt_on_train_slice(model, train_tokens, 200)
    blob = gptq_quantize_and_serialize(model)
    val_loss, val_bpb = eval_val_sliding(model, val_tokens)
    print(f"final val_bpb:{val_bpb:.8f}")


main()
'''

_TWO_PASS_CACHE = '''
import numpy as np


def ngram_eval(val_np, model_logp, order=3, mask=(1 << 22) - 1):
    counts = np.zeros((mask + 1, 2), dtype=np.int64)
    for i in range(order, len(val_np)):
        key = hash(tuple(val_np[i - order : i])) & mask
        counts[key, 0] += 1
    nll_sum = 0.0
    for i in range(order, len(val_np)):
        key = hash(tuple(val_np[i - order : i])) & mask
        conf = counts[key, 0] / (counts[key, 0] + 8.0)
        nll_sum += -(1 - conf) * model_logp[i] - conf * np.log(1e-3)
    return nll_sum
'''


_CONFIG_LINE = scoring_script(
    flags=('use_ttt = bool(int(os.environ.get("USE_TTT", "0")))\n'
           'ttt_lora_rank = int(os.environ.get("TTT_LORA_RANK", "56"))'),
    body='''
def ttt_pass(model, val_tokens):
    print(f"ttt_lora_rank:{ttt_lora_rank}")
    model(val_tokens[:-1], val_tokens[1:]).backward()
    opt.step()
    return eval_val(model, val_tokens)


def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    final = eval_val(model, val_tokens)
    if use_ttt:
        final = ttt_pass(model, val_tokens)
    print(f"final val_bpb:{final:.8f}")


main()
''')


class AdaptOnUnscoredVal(AstRule):
    """Weights or caches adapt on validation tokens before those tokens are scored.

    What it checks:
        The order of effects on validation data across the whole script: fine-tuning (TTT,
        AdamW epochs, LoRA) or a cache/count table built over validation tokens, followed by
        scoring of those tokens; it says "pre-quant" when quantization or serialization
        lies in between (the quantized artifact then scores the tokens it was tuned on).
        Snapshots taken before the adaptation and loaded back afterwards undo it.

    Why it breaks the rules:
        R-TTT-NO-PREEVAL: adapting on validation tokens and then scoring them is training
        on val, even for one epoch or a LoRA (#402, #152, #1082). R-TTT-NO-PREQUANT-VAL:
        fine-tuning the full-precision model on `val_tokens` before GPTQ and scoring the
        "fixed" quantized artifact was closed on #1376 and excluded in #1902/#1972.
        A cache filled from tokens not yet scored breaks R-EVAL-C3-SCORE-BEFORE-UPDATE.

    Example:
        `prequant_ttt_adapt_adamw(model, val_tokens, epochs)` then `gptq_quantize(...)` then
        `eval_val_sliding(model, val_tokens)`.

    Legal alternative:
        Score-first TTT after quantization (PG101's legal loop), or pre-quant adaptation on
        a training slice inside the training budget (#1554 uses `fineweb_train_000079.bin`).

    Known limitations:
        Weight state is tracked as one global model; restoring weights from a file written
        outside the script, or re-creating the model object, is not recognised as a reset.
    """

    CODE = "PG102"
    NAME = "adapt-on-unscored-val"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-TTT-NO-PREEVAL", "R-TTT-NO-PREQUANT-VAL", "R-EVAL-C3-SCORE-BEFORE-UPDATE")
    RULING = Ruling("R-TTT-NO-PREEVAL", source="README FAQ (fc6332a9c, 03-20); #402; valerio-oai on #1376")
    NEEDS_SCORING_PASS = True

    VALID = [
        CodeCase("pre-quant adaptation on a training shard slice (#1554)", _TRAIN_SLICE),
        CodeCase("a compile warmup whose weights are restored before scoring (PG108 reports the val warmup)", '''
            import copy
            import torch


            def compile_warmup(model, val_tokens, opt, steps=3):
                initial = copy.deepcopy(model.state_dict())
                for i in range(steps):
                    model(val_tokens[i * 1024 : (i + 1) * 1024], val_tokens[i * 1024 + 1 : (i + 1) * 1024 + 1]).backward()
                    opt.step()
                model.load_state_dict(initial)


            def main():
                val_tokens = load_validation_tokens("fineweb_val_*.bin")
                compile_warmup(model, val_tokens, opt)
                val_loss, val_bpb = eval_val_sliding(model, val_tokens)
                print(f"val_bpb:{val_bpb}")


            main()
            '''),
    ]
    INVALID = [
        CodeCase("pre-quant AdamW TTT on val_tokens, then GPTQ, then scoring", _PREQUANT, line=24,
                 message_contains=("pre-quant", "line 25", "line 27")),
        CodeCase("pre-quant TTT switched off in every logged run", _PREQUANT, line=24, severity=Severity.INFO,
                 log_hyperparameters={"prequant_ttt_epochs": "0"}, message_contains=("prequant_ttt_epochs=0",)),
        CodeCase("a count table filled from all validation tokens before the scoring pass", _TWO_PASS_CACHE,
                 line=8, message_contains=("cache",)),
        # the configuration dump prints `ttt_lora_rank: 56` whatever path runs: no evidence that
        # the TTT pass ran
        CodeCase("a TTT pass behind a flag only the code default turns off, its setting in the config dump",
                 _CONFIG_LINE, line=17, severity=Severity.WARNING, log_hyperparameters={"ttt_lora_rank": "56"},
                 message_contains=("disabled only by the code default",)),
    ]

    def check(self, program):
        for inc in program.analysis.all_incidents():
            if inc.kind != "adapt_before_score":
                continue
            upd, score = inc.update, inc.score
            if upd.kind == "cache" or upd.detail == "cache":
                message = (
                    f"cache update {d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} fills a table from "
                    f"{d.data(inc.origin)} before those tokens are scored by {d.snippet(score.site)} at "
                    f"{d.where(score.site)}{d.via(score)}: a cache may only hold already-scored tokens "
                    f"(R-EVAL-C3-SCORE-BEFORE-UPDATE, R-EVAL-C1-CAUSAL)"
                )
            elif inc.quant is not None:
                message = (
                    f"{d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} trains on {d.data(inc.origin)} before "
                    f"quantization/serialization at {d.where(inc.quant.site)}, and the quantized model then scores the "
                    f"same tokens at {d.where(score.site)}{d.via(score)}: pre-quant TTT on validation data is "
                    f"score-after-adapt (R-TTT-NO-PREQUANT-VAL, #1376)"
                )
            else:
                message = (
                    f"{d.snippet(upd.site)} at {d.where(upd.site)}{d.via(upd)} trains on {d.data(inc.origin)} before "
                    f"those tokens are scored by {d.snippet(score.site)} at {d.where(score.site)}{d.via(score)}: "
                    f"adapting on unscored validation tokens is training on them (R-TTT-NO-PREEVAL)"
                )
            extra = [inc.quant.site] if inc.quant is not None else []
            severity = Severity.WARNING if inc.uncertain else None
            message += d.uncertainty(inc)
            yield self.hit(upd.site, message, severity=severity, related=d.related_sites(score, upd, extra=extra),
                           also_guarded_by=d.path_sites(score, upd),
                           values={"update_line": upd.site.line(), "score_line": score.site.line(),
                                   "quantization_line": inc.quant.site.line() if inc.quant else None})

"""PG104 target-in-cache-key."""

from __future__ import annotations

from pgolf_audit.engine import describe as d
from pgolf_audit.engine.tokens import token_facts
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

HASHED_MIXER = '''
import numpy as np

PRIME = 2654435761
MASK = (1 << 22) - 1


def ngram_mix_nll(val_np, p_model, ctx_counts, full_counts, order=3, alpha=0.4):
    nll_sum = 0.0
    for i in range(order, len(val_np)):
        tgt = int(val_np[i])
        ctx_hash = hash(tuple(val_np[i - order : i]))
        full_c = full_counts[(ctx_hash ^ (tgt * PRIME)) & MASK]
        ctx_c = ctx_counts[ctx_hash & MASK]
        p_ng = min(full_c, ctx_c) / max(ctx_c, 1)
        nll_sum += -np.log((1 - alpha) * p_model[i, tgt] + alpha * p_ng)
        ctx_counts[ctx_hash & MASK] += 1
        full_counts[(ctx_hash ^ (tgt * PRIME)) & MASK] += 1
    return nll_sum
'''

NORMALIZED_ROW = '''
import numpy as np

MASK = (1 << 18) - 1


def ngram_mix_nll(val_np, p_model, counts, order=3, alpha=0.4, vocab=1024):
    nll_sum = 0.0
    for i in range(order, len(val_np)):
        tgt = int(val_np[i])
        ctx = hash(tuple(val_np[i - order : i])) & MASK
        row = counts[ctx]
        p_ng = (row + 0.5) / (row.sum() + 0.5 * vocab)
        nll_sum += -np.log((1 - alpha) * p_model[i, tgt] + alpha * p_ng[tgt])
        counts[ctx, tgt] += 1
    return nll_sum
'''


class TargetInCacheKey(AstRule):
    """An n-gram/cache lookup at scoring time uses the token being scored in its key.

    What it checks:
        In code that scores tokens, reads of count tables (tables incremented somewhere in
        the code, or named like counts/caches/tables) whose index is computed from the
        target token: `full_counts[hash(ctx) ^ tgt * PRIME]`, `table.get((ctx, tokens[p]))`,
        when the value read feeds a probability, a log or the reported loss. Incrementing a
        table with such a key after scoring (the update) is ordinary counting and is not
        reported. A dense table whose target is an index dimension of its own beside the
        context (`counts[prev, y]`) holds a row over the whole vocabulary: reading it at the
        target is how any distribution is scored; whether the row is normalised is PG106's
        question only where a ratio of hashed reads is used.

    Why it breaks the rules:
        R-NGRAM-NO-TARGET-KEYED-PROB: valerio-oai on #779 and #982 (03-27): such caches "look
        ahead to the target token to mix probabilities and therefore leak eval tokens"; the
        number is formed only for the realized token, so it is no distribution (C1, C2), and
        hash collisions push p(correct) towards 1. A cache built from training data and
        shipped in the artifact does not help (#982).

    Example:
        `full_c = full_counts[(ctx_hash ^ (tgt * PRIME)) & MASK]; p = min(full_c, ctx_c) / max(ctx_c, 1)`.

    Legal alternative:
        Read the whole next-token row for the prefix and normalise it over the vocabulary,
        or the token-only tilt `p(t) e^{β[t=h]} / (1 + p(h)(e^β - 1))` with a hint `h` from
        the prefix (R-NGRAM-NORMALIZED-TILT, #1514).

    Known limitations:
        The target is recognised by name (`y`, `tgt`, `targets`...) or as the furthest
        position read from a token stream; a target passed under another name through
        several helpers can be missed.
    """

    CODE = "PG104"
    NAME = "target-in-cache-key"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-NGRAM-NO-TARGET-KEYED-PROB", "R-EVAL-C1-CAUSAL", "R-EVAL-C2-NORMALIZED")
    RULING = Ruling("R-NGRAM-NO-TARGET-KEYED-PROB", source="valerio-oai on #779 and #982 (03-27)")

    VALID = [
        CodeCase("a normalised next-token row for the prefix, updated after scoring", NORMALIZED_ROW),
        CodeCase("a dense bigram table with row totals kept in step, read at the target", '''
            import torch


            class Bigram:
                def __init__(self, vocab):
                    self.counts = torch.zeros(vocab, vocab)
                    self.totals = torch.zeros(vocab)
                    self.vocab = vocab

                def update(self, prev, nxt):
                    self.counts.index_put_((prev, nxt), torch.ones(len(prev)), accumulate=True)
                    self.totals.index_add_(0, prev, torch.ones(len(prev)))

                def nll(self, prev, y):
                    c = self.counts[prev, y]
                    p = (c + 0.1) / (self.totals[prev] + 0.1 * self.vocab)
                    return -p.log()
            '''),
        CodeCase("a prefix-keyed hint tilting the logits, renormalised by log_softmax", '''
            import torch


            def tilt_nll(logits, tokens, p, hint_table, ctx_hash, beta=1.5):
                hint = hint_table[ctx_hash(tokens[p - 3 : p])]
                logits = logits.clone()
                logits[hint] += beta
                return -torch.log_softmax(logits, -1)[tokens[p]]
            '''),
    ]
    INVALID = [
        CodeCase("a hashed mixer reading the count of (context, target)", HASHED_MIXER, line=12,
                 message_contains=("tgt", "full_counts")),
        CodeCase("a dictionary cache read at (context, target)", '''
            import math


            def cache_logprob(cache, ctx, y, p_model, lam=0.2):
                seen = cache.get((ctx, y), 0)
                total = cache.get(ctx, 0)
                p_cache = seen / total if total else 0.0
                return math.log((1 - lam) * p_model + lam * p_cache)
            ''', line=5, message_contains=("cache",)),
        CodeCase("the mixer lives in a helper module the script imports", '''
            import numpy as np
            from ngram_cache import ngram_mix_nll

            if __name__ == "__main__":
                val_np = np.fromfile("./data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin", dtype=np.uint16)
                print(f"val_loss:{ngram_mix_nll(val_np, p_model, ctx_counts, full_counts)}")
            ''', files={"ngram_cache.py": HASHED_MIXER},
                 file="ngram_cache.py", line=12, message_contains=("full_counts",)),
    ]

    def check(self, program):
        for func in program.functions:
            if func.is_module:
                continue
            facts = token_facts(program, func)
            for read in facts.reads:
                if read.kind != "count" or read.target_dimension or not facts.reaches_score(read):
                    continue
                targets = sorted(n for n in read.sub.names if n in facts.tainted) or ["the scored position"]
                yield self.hit(read.site, (
                    f"{d.snippet(read.site)} at {d.where(read.site)} reads `{read.table}` with a key built from the "
                    f"token being scored ({', '.join(f'`{t}`' for t in targets)}): a probability formed only for "
                    f"the realized target is no normalized distribution and leaks the target "
                    f"(R-NGRAM-NO-TARGET-KEYED-PROB; valerio-oai on #779/#982)"),
                    values={"table": read.table, "key": read.key})

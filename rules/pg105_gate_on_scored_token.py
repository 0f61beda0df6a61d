"""PG105 gate-on-scored-token."""

from __future__ import annotations

from pgolf_audit.engine import describe as d
from pgolf_audit.engine.tokens import token_facts
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

WITHIN_GATE = '''
import os
import torch


class Hyperparameters:
    ngram_beta = float(os.environ.get("NGRAM_BETA", "1.0"))
    ngram_within_beta = float(os.environ.get("NGRAM_WITHIN_BETA", "0.5"))


def tilted_nll(logits, tokens, p, hint, beta, within_beta, is_ws):
    within = within_beta * (~is_ws[tokens[p]]).float()
    boost = beta + within
    logits = logits.clone()
    logits[hint] += boost
    return -torch.log_softmax(logits, -1)[tokens[p]]


def eval_ngram(model_logits, tokens, hints, is_ws, args):
    nll_sum = 0.0
    for p in range(1, tokens.numel()):
        nll_sum += tilted_nll(model_logits[p - 1], tokens, p, hints[p], args.ngram_beta,
                              within_beta=args.ngram_within_beta, is_ws=is_ws).item()
    return nll_sum


if __name__ == "__main__":
    print(f"val_bpb:{eval_ngram(logits, val_tokens, hints, is_ws, Hyperparameters())}")
'''

PREFIX_GATE = WITHIN_GATE.replace("(~is_ws[tokens[p]])", "(~is_ws[tokens[p - 1]])")



# a backoff lookup that takes the targets to read the probability, and returns beside it a
# match mask and the matched order computed from context counts only (#826, #921)
_LOOKUP = '''
import numpy as np


class NgramCache:
    def lookup(self, tokens, positions, targets):
        probs = np.zeros(len(positions))
        matched = np.zeros(len(positions), dtype=bool)
        orders = np.zeros(len(positions), dtype=np.int32)
        for n in range(self.max_order, 1, -1):
            ctx_counts = self.ctx_tables[n][hash_context(tokens, positions, n)]
            has_data = ctx_counts >= self.min_count
            full_counts = self.full_tables[n][hash_full(tokens, positions, targets, n)]
            probs[has_data] = np.minimum(full_counts, ctx_counts)[has_data] / ctx_counts[has_data]
            matched[has_data] = True
            orders[has_data] = n
        return probs, matched, orders


def mix(cache, tokens, positions, targets, p_model, entropy, order_mults):
    p_ng, matched, orders = cache.lookup(tokens, positions, targets)
    alpha = 0.2 + 0.6 / (1.0 + np.exp(-(entropy[matched] - 3.0)))
    alpha = alpha * order_mults[orders[matched] - 2]
    final = p_model.copy()
    final[matched] = (1.0 - alpha) * p_model[matched] + alpha * p_ng[matched]
    return -np.log(final).sum()


print(f"final val_bpb:{mix(NgramCache(), val_tokens, positions, targets, p_model, entropy, order_mults):.4f}")
'''


class GateOnScoredToken(AstRule):
    """Whether, or how much, an expert is used depends on a property of the scored token.

    What it checks:
        Reads of per-token property tables (`is_ws`, `is_boundary`, `starts_word`) or of
        target-keyed counts at the position being scored, whose value sets a gate or a
        mixing weight (a variable named like gate/weight/alpha/beta/within/word, or the
        condition of an `if`, `where` or conditional expression): the within-word and
        word-start gates of #1420, and "use the n-gram only if the target was seen after this
        context" (`full_c >= 1`). Byte-count lookups for the bpb denominator are ignored. A
        gate scaled by a weight that every logged run sets to zero is reported as
        information.

    Why it breaks the rules:
        R-NGRAM-NO-TARGET-GATE: whether an expert is used at position t, and its weight,
        must not depend on x_t. #659's oracle gate was ruled illegal; the #1420 tilt kernel
        read `is_bnd[tokens[p]]`/`is_ws[tokens[p]]` (fixed in #1437/#1514); nprime06 on #1795
        (PPM gate on the realized byte).

    Example:
        `within = within_beta * (~is_ws[tokens[p]])` deciding the tilt of position `p`.

    Legal alternative:
        Gate on the prefix (`is_ws[tokens[p - 1]]`), on the model's entropy, or on prefix
        counters; or use the token-only tilt (`NGRAM_WITHIN_BETA=0 NGRAM_WORD_BETA=0`,
        #1514, #2135).

    Known limitations:
        Property tables are recognised by elimination (not a count table, not the model's
        distribution, not a byte table); comparisons of the target with constants
        (`tgt == SPACE_ID`) are not treated as gates.
    """

    CODE = "PG105"
    NAME = "gate-on-scored-token"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-NGRAM-NO-TARGET-GATE", "R-EVAL-C1-CAUSAL")
    RULING = Ruling("R-NGRAM-NO-TARGET-GATE", source="organizers on #659; #1420 causality fix")

    VALID = [
        CodeCase("a within-word gate on the previous token (the prefix)", PREFIX_GATE),
        CodeCase("a mixture weight from the match mask and order a target-taking lookup computes from the context",
                 _LOOKUP),
        # `target` here is a loader's share of sequences per shard, not a token
        CodeCase("a training loader's per-shard quota named `target`", '''
            import numpy as np


            def shard_quotas(batch_size, remaining):
                target = batch_size * remaining / remaining.sum()
                quotas = np.floor(target).astype(np.int64)
                extra = remaining.astype(np.int64) - quotas
                shortfall = batch_size - int(quotas.sum())
                for j in np.argsort(-extra):
                    if shortfall > 0 and extra[j] > 0:
                        quotas[j] += 1
                        extra[j] -= 1
                        shortfall -= 1
                return quotas
            '''),
        CodeCase("byte counting for the bpb denominator reads target properties by design", '''
            import torch


            def token_bytes(prev_ids, target_ids, base_bytes, has_leading_space, is_boundary):
                extra = has_leading_space[target_ids] & ~is_boundary[prev_ids]
                return base_bytes[target_ids].double() + extra.double()
            '''),
    ]
    INVALID = [
        CodeCase("a within-word gate read at the scored token (#1420)", WITHIN_GATE, line=11,
                 message_contains=("is_ws", "gates")),
        CodeCase("the within-word gate weighted to zero in every logged run", WITHIN_GATE, line=11,
                 severity=Severity.INFO, log_hyperparameters={"ngram_within_beta": "0.0", "ngram_beta": "1.0"},
                 message_contains=("disabled in every logged run", "ngram_within_beta=0.0")),
        CodeCase("the within-word gate left at its default weight in the logged run", WITHIN_GATE, line=11,
                 severity=Severity.ERROR, log_hyperparameters={"ngram_beta": "1.0"}, message_contains=("default",)),
        CodeCase("the same lookup whose match mask is set only where the target was seen after the context",
                 _LOOKUP.replace("matched[has_data] = True", "matched[has_data & (full_counts > 0)] = True"),
                 line=21, message_contains=("gate", "entropy[matched]")),
        CodeCase("an n-gram used only when the target was seen after this context", '''
            import numpy as np


            def score(val_np, p_model, full_counts, ctx_counts, i, alpha=0.3):
                tgt = val_np[i]
                ctx = hash(tuple(val_np[i - 3 : i]))
                full_c = full_counts[hash((ctx, tgt))]
                ctx_c = ctx_counts[ctx]
                use_ngram = full_c >= 1
                p_ng = full_c / max(ctx_c, 1)
                return np.log(np.where(use_ngram, (1 - alpha) * p_model[i, tgt] + alpha * p_ng, p_model[i, tgt]))
            ''', line=9,
                 message_contains=("gate",)),
    ]

    def check(self, program):
        for func in program.functions:
            if func.is_module:
                continue
            facts = token_facts(program, func)
            for read in facts.reads:
                is_gate, carrier = facts.gate_sink(read)
                if not is_gate:
                    continue
                what = ("the count of the target after this context" if read.kind == "count"
                        else f"`{read.table}` of the scored token")
                # report where the gate is formed: the read itself, or the variable it feeds
                gate_site = read.site
                if carrier and carrier not in facts.outputs(read.site):
                    gate_site = facts.assignment_site(carrier, read.site) or read.site
                carried = {carrier} if carrier else facts.outputs(read.site)
                weights = [(x, func) for x in facts.weights(carried | facts.outputs(read.site))]
                read_words = "" if gate_site is read.site else f" ({d.snippet(read.site)} at {d.where(read.site)})"
                yield self.hit(gate_site, (
                    f"{d.snippet(gate_site)} at {d.where(gate_site)} gates the mixture on {what} "
                    f"`{read.table}[{read.key}]`{read_words}: whether and how much an expert is used must not depend "
                    f"on the token being scored (R-NGRAM-NO-TARGET-GATE; the #1420 within-word/word-start gates)"),
                    weights=weights, related=[read.site] if gate_site is not read.site else [],
                    values={"table": read.table, "key": read.key, "gate": carrier or None})

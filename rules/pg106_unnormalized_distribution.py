"""PG106 unnormalized-distribution."""

from __future__ import annotations

import re

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.engine.patterns import BYTE_MODEL_RE, COUNT_TABLE_RE
from pgolf_audit.engine.program import Site
from pgolf_audit.engine.tokens import token_facts
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

from .pg104_target_in_cache_key import HASHED_MIXER

_BYTES_RE = re.compile(r"byte|nb$|^nb|n_b|len_?b|piece_len|num_bytes", re.I)
# a token's log-probability (not summed losses or bits: `nll_sum / byte_sum` is the metric)
_LOGP_RE = re.compile(r"logp|log_p|lp$|^lp|logprob|log_prob|^p_tok|token_p", re.I)

PPM_MIXTURE = '''
import math


def ppm_mixture_bits(token_logp, piece_bytes, ppm, lam=0.3):
    bits = 0.0
    n = len(piece_bytes)
    p_byte_nn = math.exp(token_logp / n)
    for b in piece_bytes:
        p_ppm = ppm.prob(b)
        bits += -math.log2((1 - lam) * p_byte_nn + lam * p_ppm)
        ppm.update(b)
    return bits
'''


class UnnormalizedDistribution(AstRule):
    """The scored "probability" is not a full normalised distribution over the vocabulary.

    What it checks:
        Ratios of hashed count-table reads used as probabilities (`min(full_c, ctx_c) /
        max(ctx_c, 1)`, `count / (ctx_count + beta)`) when the numerator is read at the
        target or at hashed (context, candidate) keys and the result is not renormalised
        over the vocabulary; and byte-level mixtures that spread a token's probability over
        its bytes (`exp(token_logp / n_bytes)`, `p ** (1 / n)`) or mix the model with a
        byte-level PPM model and score bytes.

    Why it breaks the rules:
        R-EVAL-C2-NORMALIZED: the score must be -log p(x_t) under a distribution over the
        whole vocabulary that sums to 1; hashed blends summed to about 277 (#886), properly
        normalising #972 took it to 1.513 BPB (#978). R-PPM-BYTE-MIXTURE-C2: PPM-D byte
        mixtures do not give a normalised token distribution even when causal (#1872,
        excluded in #1902).

    Example:
        `p_ng = min(full_c, ctx_c) / max(ctx_c, 1)` mixed into the scored probability;
        `math.exp(token_logp / n)` mixed with `ppm.prob(b)` per byte.

    Legal alternative:
        Mix full distributions (`(1 - a) * p_model + a * p_ng` with `p_ng` normalised over
        the vocabulary and `a` independent of the target), or the closed-form tilt with its
        explicit normaliser (R-NGRAM-NORMALIZED-TILT).

    Known limitations:
        Renormalisation is recognised by a division by a `.sum()`, softmax or normalize
        call; a normaliser computed in another function is not followed.
    """

    CODE = "PG106"
    NAME = "unnormalized-distribution"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-EVAL-C2-NORMALIZED", "R-PPM-BYTE-MIXTURE-C2", "R-NGRAM-NORMALIZED-TILT")
    RULING = Ruling("R-EVAL-C2-NORMALIZED", source="valerio-oai on #779/#982; #1017 C2; cocohearts #1902")

    VALID = [
        CodeCase("the closed-form token tilt with its normaliser (#1514)", '''
            import math


            def tilt_prob(p, hint, beta):
                tilted = p.clone()
                tilted[hint] = tilted[hint] * math.exp(beta)
                return tilted / (1.0 + p[hint] * (math.exp(beta) - 1.0))
            '''),
        CodeCase("the bpb formula divides by bytes, but mixes nothing", '''
            import math


            def bits_per_byte(loss_sum, token_count, byte_count):
                return loss_sum / math.log(2) * token_count / byte_count
            '''),
    ]
    INVALID = [
        CodeCase("a hashed count ratio used as the n-gram probability", HASHED_MIXER, line=14,
                 message_contains=("ratio",)),
        CodeCase("a PPM byte mixture spreading the token probability over its bytes", PPM_MIXTURE, line=7,
                 message_contains=("byte",)),
    ]

    def check(self, program):
        for func in program.functions:
            if func.is_module:
                continue
            yield from self._ratios(program, func)
            yield from self._byte_mixture(program, func)

    def _ratios(self, program, func):
        facts = token_facts(program, func)
        # a dense row read at the target (`counts[prev, y]`) is a distribution's entry, not a hashed count
        count_reads = {id(r.sub): r for r in facts.reads if r.kind == "count" and not r.target_dimension}
        info = facts.info
        # names holding a target-keyed count
        keyed_names: set[str] = set()
        for r in count_reads.values():
            keyed_names |= facts.outputs(r.site)
        if not count_reads:
            return
        tables = set(facts.count_tables)
        reported: set[int] = set()
        for s, x in program.expressions(func):
            if not isinstance(x, ir.BinOp) or x.op != "/" or id(s) in reported:
                continue
            left_keyed = any(id(y) in count_reads for y in ir.walk(x.left)) or (x.left.names & keyed_names)
            if not left_keyed or not _count_like(x.right, tables, info):
                continue
            if _normalised_later(s, func, program):
                continue
            reported.add(id(s))
            site = Site(func, s, x)
            yield self.hit(site, (
                f"{d.snippet(site)} at {d.where(site)} uses a ratio of hashed counts, read at the target, as a "
                f"probability: its values over the vocabulary do not sum to 1 (hashed blends summed to ~277 "
                f"in #886), so it is no distribution (R-EVAL-C2-NORMALIZED; valerio-oai on #779)"))

    def _byte_mixture(self, program, func):
        refs = func.name_refs | func.attr_refs | {p.lstrip("*") for p in func.params}
        if not any(BYTE_MODEL_RE.search(n) for n in refs):
            return
        info = program.local_info(func)
        for s, x in program.expressions(func):
            if isinstance(s, ir.Return):
                continue  # a returned ratio is a result (bits per byte), not a per-byte probability
            if _spreads_over_bytes(x, info):
                site = Site(func, s, x)
                yield self.hit(site, (
                    f"{d.snippet(site)} at {d.where(site)} spreads a token's probability over its bytes and "
                    f"`{func.qualname}` mixes it with a byte-level model: byte mixtures do not give a normalised "
                    f"distribution over the token alphabet (R-PPM-BYTE-MIXTURE-C2; #1872, excluded in #1902)"))
                return


def _count_like(x: ir.X, tables: set[str], info) -> bool:
    for y in ir.walk(x):
        if isinstance(y, ir.Sub):
            base = y.base
            while isinstance(base, ir.Sub):
                base = base.base
            name = base.id if isinstance(base, ir.Name) else (base.attr if isinstance(base, ir.Attr) else "")
            if name in tables or COUNT_TABLE_RE.search(name):
                return True
        if isinstance(y, ir.Name):
            for value in info.defs.get(y.id, ())[:2]:
                for z in ir.walk(value):
                    if isinstance(z, ir.Sub) and isinstance(z.base, (ir.Name, ir.Attr)):
                        name = z.base.id if isinstance(z.base, ir.Name) else z.base.attr
                        if name in tables or COUNT_TABLE_RE.search(name):
                            return True
                    if isinstance(z, ir.Call) and isinstance(z.func, ir.Attr) and z.func.attr == "get":
                        return True
    return False


def _normalised_later(s, func, program) -> bool:
    """The ratio's variable is later divided by its own sum or pushed through softmax."""
    outs: set[str] = set()
    if isinstance(s, ir.Assign):
        for t in s.targets:
            if isinstance(t, ir.Name):
                outs.add(t.id)
    if not outs:
        return False
    for _inner, x in program.expressions(func):
        if isinstance(x, ir.BinOp) and x.op == "/" and x.left.names & outs:
            for y in ir.walk(x.right):
                if isinstance(y, ir.Call) and isinstance(y.func, ir.Attr) and y.func.attr == "sum" \
                        and y.func.base.names & outs:
                    return True
        if isinstance(x, ir.Call):
            name = ir.call_name(x)
            if name in ("softmax", "log_softmax", "normalize") and any(a.names & outs for a in x.args):
                return True
    return False


def _spreads_over_bytes(x: ir.X, info) -> bool:
    def bytes_like(y: ir.X) -> bool:
        names = set(y.names)
        for n in list(names):
            for value in info.defs.get(n, ())[:2]:
                names |= value.names
        return any(_BYTES_RE.search(n) for n in names)

    if isinstance(x, ir.BinOp) and x.op == "**" and isinstance(x.right, ir.BinOp) and x.right.op == "/" \
            and bytes_like(x.right.right):
        return True
    if isinstance(x, ir.BinOp) and x.op == "/" and any(_LOGP_RE.search(n) for n in x.left.names) and bytes_like(x.right):
        return True
    return False

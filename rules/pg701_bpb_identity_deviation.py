"""PG701 bpb-identity-deviation."""

from __future__ import annotations

import re

from pgolf_audit.bpb_identity import IdentityVerdict, TokenizerHint, check_bpb_identity
from pgolf_audit.checkutil import run_name
from pgolf_audit.model import Category, Confidence, Severity
from pgolf_audit.parsers.logs import NUM
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

LOSS_TEXT = re.compile(r"val_loss[:=]\s*(" + NUM + r")")
TRUE_WORDS = {"1", "true", "yes", "on"}


def _printed_loss(text: str, value: float) -> str | float:
    m = LOSS_TEXT.search(text)
    return m.group(1) if m else value


def tokenizer_hint(run) -> TokenizerHint:
    rec = run.record
    caseops = rec.hyperparameters.get("caseops_enabled") or rec.hyperparameters.get("CASEOPS_ENABLED")
    return TokenizerHint(vocab_size=rec.vocab_size, tokenizer_path=rec.tokenizer_path, dataset=rec.dataset,
                         caseops=None if caseops is None else caseops.strip().lower() in TRUE_WORDS,
                         val_tokens=rec.val_tokens)


class BpbIdentityDeviation(Check):
    """A logged val_bpb / val_loss ratio does not match the tokenizer's full validation set.

    What it checks:
        For a fixed tokenizer scored on the full validation set, val_bpb / val_loss =
        tokens / (bytes * ln 2) is a constant. For every run, each post-training metric line
        with a val_loss is compared with the reference ratio of the tokenizer the log declares
        (tokenizer path, dataset, vocab size, CaseOps flag), from a table derived from the
        merged records' logs (`rules/tracks/bpb_ratios.toml`, with provenance). A deviation
        beyond the tolerance (widened by the printed rounding) means the tokens or the bytes
        scored are not the canonical ones, and the finding says which is likely: a byte-
        accounting bug (leading space counted twice, byte-fallback pieces as 3 bytes, CaseOps
        transformed bytes) or a partial / different validation set (from `val_tokens`).

    Why it breaks the rules:
        R-BPB-FORMULA: val_bpb = NLL / ln 2 over the original UTF-8 bytes of the scored targets.
        R-BPB-LUT-DOUBLE-COUNT (#1719: +17% bytes), R-BPB-BYTE-FALLBACK (Scylla removed in
        #1806), R-BPB-CASEOPS-SIDECAR, R-DATA-CANONICAL-VAL (the full fixed split; #2109, #871).

    Example:
        XNOR-Net's sp1024 lines sit 5.9% below the sp1024 ratio: the script scored only the
        first 500k validation tokens by default.

    Legal alternative:
        Score the full validation split with the challenge's byte table; check a custom
        tokenizer with `pgolf-audit bpb --tokenizer T.model --val 'GLOB'`.

    Known limitations:
        Only the challenge's tokenizers have reference ratios; a custom tokenizer is skipped
        here (its proof belongs in the README, R-TOKENIZER-PROOF). A line printed with few
        decimals can hide a small deviation.
    """

    CODE = "PG701"
    NAME = "bpb-identity-deviation"
    CATEGORY = Category.METRIC
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.MEDIUM
    REFERENCES = ("R-BPB-FORMULA", "R-BPB-LUT-DOUBLE-COUNT", "R-BPB-BYTE-FALLBACK", "R-BPB-CASEOPS-SIDECAR",
                  "R-DATA-CANONICAL-VAL")

    VALID = [FolderCase("sp1024 lines at the reference ratio")]
    INVALID = [
        FolderCase("leading-space byte counted twice (bpb 17% low)", edits={"train_seed42.log": [
            (r"legal_ttt_exact val_loss:1\.98549664 val_bpb:1\.17592428",
             "legal_ttt_exact val_loss:1.98549664 val_bpb:1.00506349")]},
            message_contains=("leading-space",)),
        FolderCase("scored on part of the validation set", edits={"train_seed1337.log": [
            (r"tokens:62021632", "tokens:500000"),
            (r"legal_ttt_exact val_loss:1\.98570480 val_bpb:1\.17604757",
             "legal_ttt_exact val_loss:1.98570480 val_bpb:1.10661920")]},
            message_contains=("train_seed1337.log", "500,000")),
    ]

    def run(self, ctx):
        runs = ctx.scored_runs
        if not runs:
            raise SkipCheck("no scored run")
        known = 0
        for run in runs:
            hint = tokenizer_hint(run)
            deviations = []
            for metric in run.record.metrics:
                if metric.val_loss is None or metric.val_loss <= 0 or metric.val_bpb <= 0:
                    continue
                bpb_text = f"{metric.val_bpb:.{metric.bpb_decimals}f}"
                result = check_bpb_identity(hint, _printed_loss(metric.text, metric.val_loss), bpb_text,
                                            run.record.val_tokens)
                if result.verdict is IdentityVerdict.UNKNOWN_TOKENIZER:
                    break
                known += 1
                if result.verdict is IdentityVerdict.DEVIATES:
                    deviations.append((metric, result))
            if not deviations:
                continue
            metric, result = next(((m, r) for m, r in deviations if m is run.headline), deviations[0])
            others = f" ({len(deviations)} of the run's metric lines deviate)" if len(deviations) > 1 else ""
            yield self.finding(
                f"{run_name(run)}: {metric.label} {result.cause}{others}",
                location=run.at(metric.line), excerpt=ctx.line_text(run.path, metric.line),
                values={"tokenizer": result.tokenizer, "measured_ratio": round(result.measured_ratio, 8),
                        "expected_ratio": result.expected_ratio, "relative_deviation": result.relative_deviation,
                        "tolerance": result.tolerance, "val_tokens": result.val_tokens, "cause": result.cause_id},
            )
        if not known:
            raise SkipCheck("the logs declare no tokenizer with a reference ratio (a custom tokenizer: "
                            "check it with `pgolf-audit bpb`)")

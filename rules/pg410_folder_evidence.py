"""PG410 folder-evidence."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bytes
from pgolf_audit.log_evidence import KIND_TITLE, claim_facts, log_config_facts
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase

EDIT_LOG = "train_seed42.log"

# A PPM byte mixture was ruled out (C2, #1872/#1902) and a partial score is not the metric;
# the other techniques are legal or not depending on the code, which the PG1xx rules judge.
KIND_SEVERITY = {"ppm": Severity.WARNING, "subset": Severity.WARNING}
KIND_RULES = {"ppm": "R-PPM-BYTE-MIXTURE-C2", "mixer": "R-EVAL-C2-NORMALIZED", "ngram-cache": "R-NGRAM-NO-TARGET-KEYED-PROB",
              "slot": "R-SLOT-NO-SCORED-REGION", "subset": "R-DATA-CANONICAL-VAL"}


def append(line: str):
    return {EDIT_LOG: lambda text: text + line + "\n"}


class FolderEvidence(Check):
    """The logs or submission.json show what the code review must look at, or contradict the track.

    What it checks:
        Configuration and progress lines of the logs (outside source dumps) that show an
        evaluation-time technique on or running: a PPM byte mixture (`ppm_*_enabled: True`,
        `[ppm_mix]`), a context mixer (`ngram_mixer:`), an n-gram or phrase cache
        (`ngram_eval:`, `phrase_cache:`), SLOT (`slot:starting`), and a scored-token subset
        (`subset=3000000`, `ppm_subset_tokens: 5000000`). One finding per technique lists the
        files and lines. In a record-track folder, `non_record: true` in submission.json, and
        sizes or times under keys the parser does not read that exceed the track's limits.

    Why it breaks the rules:
        R-PPM-BYTE-MIXTURE-C2: byte-level PPM mixtures were ruled out (#1872, excluded in
        #1902); R-DATA-CANONICAL-VAL: the score is over the full validation set. Mixers, caches
        and SLOT are legal only in the forms R-NGRAM-NORMALIZED-TILT / R-SLOT-CONTEXT-ONLY allow:
        the log line tells the reviewer the technique ran (info); PG1xx judge the code.
        R-NONRECORD: a folder that declares itself non-record belongs in track_non_record_16mb.

    Example:
        `ppm_byte_conditional_enabled: True` with `ppm_subset_tokens: 5000000`.

    Legal alternative:
        Score the full validation set with a normalized, causal distribution; file non-record
        work under `records/track_non_record_16mb/`.

    Known limitations:
        Names outside these patterns are not recognised; a line says what was configured, not
        that the code used it.
    """

    CODE = "PG410"
    NAME = "folder-evidence"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-PPM-BYTE-MIXTURE-C2", "R-DATA-CANONICAL-VAL", "R-NONRECORD")

    VALID = [FolderCase("no mixer, cache, SLOT or subset in the logs")]
    INVALID = [
        FolderCase("PPM byte mixture enabled", edits=append("  ppm_byte_conditional_enabled: True"),
                   message_contains=("PPM byte mixture", "train_seed42.log")),
        FolderCase("scored-token subset", edits=append("ppm_mix subset=3000000 tokens"),
                   message_contains=("token subset",)),
        FolderCase("n-gram cache running", edits=append("ngram_eval: order=9 min_order=2 buckets=4194304"),
                   severity=Severity.INFO, message_contains=("n-gram cache",)),
        FolderCase("non_record in a record-track folder", json={"non_record": True}, message_contains=("non_record",)),
        FolderCase("size under a key the parser does not read", json={"total_size_bytes": 16200000},
                   message_contains=("total_size_bytes", "16,200,000")),
    ]

    def run(self, ctx):
        for kind, lines in log_config_facts(ctx).items():
            first = lines[0]
            places = sorted({f"{l.path}:{l.line}" for l in lines})
            shown = ", ".join(places[:6]) + (f" and {len(places) - 6} more" if len(places) > 6 else "")
            yield self.finding(
                f"the logs show {KIND_TITLE[kind]} ({KIND_RULES[kind]}): {shown}",
                severity=KIND_SEVERITY.get(kind, Severity.INFO), location=Location(first.path, first.line),
                excerpt=first.text, related=[Location(l.path, l.line) for l in lines[1:]],
                values={"kind": kind, "lines": len(lines)},
            )
        facts = claim_facts(ctx)
        claims = ctx.submission
        if claims is None:
            return
        if facts["non_record"] and ctx.is_record_track:
            yield self.finding("submission.json declares non_record: true, but the folder is in the record track",
                               location=Location(claims.path, json_path="non_record"))
        limits = ctx.limits
        for key, value in facts["sizes"].items():
            if value > limits.artifact_bytes_max:
                yield self.finding(f"submission.json {key} = {fmt_bytes(value)} bytes, over the "
                                   f"{fmt_bytes(limits.artifact_bytes_max)}-byte cap", location=Location(claims.path, json_path=key),
                                   values={"key": key, "claimed": value, "limit": limits.artifact_bytes_max})
        if ctx.is_record_track:
            for key, value in facts["times"].items():
                cap = limits.eval_seconds_max if "eval" in key.lower() else limits.train_seconds_max
                if cap and value > cap + limits.train_step_tolerance_max_seconds:
                    yield self.finding(f"submission.json {key} = {value:,} s, over the {cap:g} s limit",
                                       location=Location(claims.path, json_path=key),
                                       values={"key": key, "claimed": value, "limit": cap})

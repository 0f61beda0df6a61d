"""PG404 logged-code-differs."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_bytes, run_name
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


def line_overlap(a: str, b: str) -> float:
    """Share of distinct non-blank lines the two texts have in common (cheap and order-free)."""
    la = {l.strip() for l in a.splitlines() if l.strip()}
    lb = {l.strip() for l in b.splitlines() if l.strip()}
    if not la or not lb:
        return 0.0
    return len(la & lb) / max(len(la), len(lb))


class LoggedCodeDiffers(Check):
    """The log was produced by other code than the submitted train_gpt.py.

    What it checks:
        Each run's logged `Code size` against the submitted code: the entry file's bytes, its
        unwrapped size, or the counted total (a `Code size (compressed)` line is compared with
        the wrapper the script builds and is not an error by itself). Where the log embeds the
        training source, the dump is compared with the submitted file (exactly, else by line
        overlap).

    Why it breaks the rules:
        R-FMT-LOG-INTEGRITY: the logs must come from the submitted code and configuration.
        55 real logs report a code size that differs from the folder's file, e.g. LowerLR's log
        ran 50,919 bytes of code while the folder holds the 47,642-byte baseline.

    Example:
        `Code size: 146673 bytes` while train_gpt.py is 148,032 bytes (later TTT changes).

    Legal alternative:
        Rerun the seeds with the final code, or ship the code the logs came from.

    Known limitations:
        A size difference of a few bytes (an edited comment) is still reported: the tool cannot
        tell a comment from a change of behaviour.
    """

    CODE = "PG404"
    NAME = "logged-code-differs"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-LOG-INTEGRITY", "R-ART-CODE-BYTES")

    VALID = [FolderCase("logs print the wrapper's size and dump it")]
    INVALID = [
        FolderCase("one seed ran older code", edits={"train_seed1337.log": [(r"Code size: \d+ bytes", "Code size: 8590 bytes")]},
                   message_contains=("8,590",)),
        FolderCase("submitted script edited after the runs",
                   edits={"train_gpt.py": lambda text: text + "# tuned after the runs\n"},
                   message_contains=("train_gpt.py",)),
    ]

    def run(self, ctx):
        code = ctx.code
        if code is None:
            raise SkipCheck(ctx.code_error or "no code")
        runs = [r for r in ctx.scored_runs]
        if not runs:
            raise SkipCheck("no scored run")
        accounting = ctx.code_accounting
        entry_text = ctx.read_text(code.entry) or ""
        sizes = {code.entry_bytes: f"{code.entry} on disk", len(code.source.encode("utf-8")): "the unwrapped source"}
        if accounting is not None:
            sizes.setdefault(accounting.total_bytes, "all counted code files")
        for run in runs:
            rec = run.record
            if rec.code_bytes is not None and rec.code_bytes not in sizes:
                described = ", ".join(f"{fmt_bytes(n)} ({what})" for n, what in sizes.items())
                yield self.finding(
                    f"{run_name(run)} logs Code size {fmt_bytes(rec.code_bytes)} bytes, which matches none of the "
                    f"submitted code's sizes: {described}",
                    location=run.at(rec.code_bytes_line), excerpt=ctx.line_text(run.path, rec.code_bytes_line),
                    values={"logged": rec.code_bytes, "submitted": sorted(sizes)},
                )
            dump = rec.source_dump
            if dump is not None:
                candidates = (entry_text, code.source)
                if any(dump.strip() == c.strip() for c in candidates):
                    continue
                overlap = max(line_overlap(dump, c) for c in candidates)
                yield self.finding(
                    f"{run_name(run)} embeds a {fmt_bytes(len(dump.encode('utf-8')))}-byte training source that differs "
                    f"from the submitted {code.entry} (line overlap {overlap:.3f})",
                    location=run.at(rec.source_dump_line), values={"line_overlap": round(overlap, 3)},
                )

"""PG605 wrapped-code."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck
from pgolf_audit.unwrap import unwrap


class WrappedCode(Check):
    """The training script is a compressed self-extracting wrapper (noted, and unwrapped).

    What it checks:
        Whether train_gpt.py is an `exec(decompress(decode("...")))` wrapper or an exec stub of
        a sibling file. The audit reads the unwrapped source (never executing it), and this note
        names the layers so a reviewer can reproduce them with `pgolf-audit unwrap`.

    Why it breaks the rules:
        It does not: self-extracting compressed code is accepted (R-ART-CODE-BYTES (a)). But
        compressed code hides logic from human review (R-FMT-SELF-CONTAINED, #1785), so the
        review states that the findings refer to unwrapped lines. An exec stub of a sibling
        file means the sibling is the counted code (#1412).

    Example:
        `import lzma as L,base64 as B` + `exec(L.decompress(B.b85decode("...")))`.

    Legal alternative:
        Ship the wrapper, and optionally the readable source named in the README.

    Known limitations:
        Only the whitelisted decoders are interpreted; anything else makes the code
        unanalysable (PG903).
    """

    CODE = "PG605"
    NAME = "wrapped-code"
    CATEGORY = Category.PACKAGING
    SEVERITY = Severity.INFO
    REFERENCES = ("R-ART-CODE-BYTES", "R-FMT-SELF-CONTAINED")

    VALID = [FolderCase("plain readable source",
                        edits={"train_gpt.py": lambda text: unwrap("train_gpt.py", text, lambda _: None).source})]
    INVALID = [FolderCase("the example's lzma + base85 wrapper", message_contains=("base85",))]

    def run(self, ctx):
        code = ctx.code
        if code is None:
            raise SkipCheck(ctx.code_error or "no code")
        if not code.wrapped:
            return
        chain = "; ".join(f"layer {i} at {l.file}:{l.line}: {l.description}" for i, l in enumerate(code.layers, 1))
        unwrapped = len(code.source.encode("utf-8"))
        yield self.finding(
            f"{code.entry} ({code.entry_bytes:,} bytes) is a self-extracting wrapper ({chain}); audited its "
            f"{unwrapped:,}-byte unwrapped source{' from ' + code.origin if code.origin != code.entry else ''}",
            location=Location(code.entry, code.layers[0].line if code.layers else None),
            values={"entry_bytes": code.entry_bytes, "unwrapped_bytes": unwrapped, "layers": len(code.layers)},
        )

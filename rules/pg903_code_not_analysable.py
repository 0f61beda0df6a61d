"""PG903 code-not-analysable."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck


class CodeNotAnalysable(Check):
    """The training script could not be unwrapped or parsed, so no code rule could run.

    What it checks:
        The entry script is read, unwrapped (only whitelisted decoders, never executed) and
        parsed with libcst. Any failure (unknown codec, corrupt payload, decompression bomb,
        syntax the parser rejects) is reported with its cause; the legality rules then cannot
        run and the verdict is INCOMPLETE.

    Why it breaks the rules:
        Code a reviewer cannot read cannot be shown legal (R-FMT-SELF-CONTAINED; reviewers
        flag obfuscated code, #1785).

    Example:
        `exec(brotli.decompress(base64.b85decode("...")))` without the brotli module installed;
        a wrapper whose payload is truncated.

    Legal alternative:
        lzma/zlib/gzip/bz2 with base85/base64/ascii85, or plain source.

    Known limitations:
        Brotli payloads are readable only where the `brotli` module is installed.
    """

    CODE = "PG903"
    NAME = "code-not-analysable"
    CATEGORY = Category.META
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-FMT-SELF-CONTAINED",)

    VALID = [FolderCase("the example's lzma wrapper unwraps and parses")]
    INVALID = [
        FolderCase("truncated payload",
                   edits={"train_gpt.py": [(r'b85decode\("(.{40})[^"]*"', r'b85decode("\1"')]},
                   message_contains=("train_gpt.py",)),
        FolderCase("unsupported decoder",
                   edits={"train_gpt.py": [(r"L\.decompress", "zstd.decompress")]}, message_contains=("train_gpt.py",)),
        FolderCase("plain source with a syntax error", edits={"train_gpt.py": "def main(:\n    pass\n"},
                   message_contains=("not parseable",)),
    ]

    def run(self, ctx):
        if ctx.entry_script is None or ctx.folder.files[ctx.entry_script].size == 0:
            raise SkipCheck("no training script (reported by PG601)")
        if ctx.code is None:
            yield self.finding(ctx.code_error or "the training script could not be read", location=Location(ctx.entry_script))
            return
        if ctx.code_module is None:
            yield self.finding(ctx.code_parse_error or "the unwrapped source could not be parsed",
                               location=ctx.code_location(None))

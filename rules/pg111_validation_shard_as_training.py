"""PG111 validation-shard-as-training."""

from __future__ import annotations

import re
import shlex

from pgolf_audit.engine.patterns import TRAIN_FILE_RE, VAL_FILE_RE
from pgolf_audit.model import Category, Confidence, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

# commands that make one file appear under another name
_LINK_COMMANDS = {"ln", "cp", "mv", "rsync", "install"}
_SHELL_FILES_RE = re.compile(r"(?:^|/)(?:README\.md|[^/]+\.sh)$", re.I)
_COMMAND_SPLIT_RE = re.compile(r"&&|\|\||;|\|")
_MAX_LINE = 2000


class ValidationShardAsTraining(Check):
    """The record's own setup commands put a validation shard where the training shards go.

    What it checks:
        Shell commands in the README and the folder's `.sh` scripts that link, copy or move
        a file named like a validation shard (`fineweb_val_*.bin`) to a name the training
        loader reads (`fineweb_train_*.bin`): the script then trains on validation tokens
        whatever its code says.

    Why it breaks the rules:
        R-DATA-NO-VAL-IN-TRAINING: no validation data may be used during training in any form
        (README FAQ; made explicit after #44, which trained only on the validation shard
        through exactly such a link).

    Example:
        `ln -s /data/fineweb10B_sp1024/fineweb_val_000000.bin /data/valonly/fineweb_train_000000.bin`

    Legal alternative:
        Train on the challenge's training shards; a disjoint split made from the training
        data is fine.

    Known limitations:
        Commands built at run time (a Python `os.symlink` with computed names) are not read
        here; the code rules follow the data the script itself opens.
    """

    CODE = "PG111"
    NAME = "validation-shard-as-training"
    CATEGORY = Category.LEGALITY
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.HIGH
    REFERENCES = ("R-DATA-NO-VAL-IN-TRAINING",)

    VALID = [
        FolderCase("a README that links the training shards into place", edits={"README.md": lambda text: text + (
            "\n```bash\nln -s /data/fineweb10B_sp1024/fineweb_train_000001.bin ./data/fineweb_train_000001.bin\n"
            "ln -s /data/fineweb10B_sp1024/fineweb_val_000000.bin ./data/fineweb_val_000000.bin\n```\n")}),
    ]
    INVALID = [
        FolderCase("the validation shard linked as a training shard", edits={"README.md": lambda text: text + (
            "\n```bash\nln -s /data/fineweb10B_sp1024/fineweb_val_000000.bin "
            "/data/valonly/fineweb_train_000000.bin\n```\n")},
            message_contains=("fineweb_val_000000.bin", "fineweb_train_000000.bin")),
        FolderCase("a setup script that copies validation data into the training name", edits={
            "setup.sh": "#!/bin/sh\nset -e\ncp $DATA/fineweb_val_000000.bin $OUT/fineweb_train_000000.bin && echo ok\n"},
            message_contains=("setup.sh",)),
    ]

    def run(self, ctx):
        files = sorted(p for p in ctx.folder.files if _SHELL_FILES_RE.search(p))
        if not files:
            raise SkipCheck("no README or shell script")
        for path in files:
            text = ctx.read_text(path)
            if text is None:
                continue
            for number, line in enumerate(text.splitlines(), start=1):
                if len(line) > _MAX_LINE or "fineweb_val" not in line and "val" not in line:
                    continue
                for source, target in _copies(line):
                    if VAL_FILE_RE.search(source) and TRAIN_FILE_RE.search(target) and not VAL_FILE_RE.search(target):
                        yield self.finding(
                            f"`{line.strip()[:160]}` at {path}:{number} puts the validation shard `{source}` where "
                            f"the training loader reads `{target}`: the run trains on validation tokens "
                            f"(R-DATA-NO-VAL-IN-TRAINING, #44)",
                            location=Location(path, number, number), values={"source": source, "target": target})


def _copies(line: str) -> list[tuple[str, str]]:
    """(source, target) of each link/copy/move command on a shell line."""
    out = []
    for part in _COMMAND_SPLIT_RE.split(line.strip().lstrip("$ ").strip()):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        if words and words[0] == "sudo":
            words = words[1:]
        if not words or words[0] not in _LINK_COMMANDS:
            continue
        operands = [w for w in words[1:] if not w.startswith("-")]
        if len(operands) >= 2:
            out.extend((source, operands[-1]) for source in operands[:-1])
    return out

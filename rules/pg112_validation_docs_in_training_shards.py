"""PG112 validation-docs-in-training-shards."""

from __future__ import annotations

import ast
import re

from pgolf_audit.model import Category, Confidence, Location, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

# R-DATA-CANONICAL-VAL: the validation set is the first 50,000 documents of the stream
CANONICAL_VAL_DOCS = 50_000
# Training shards in the published export of a dataset that submissions rebuild locally
# (rules.md R-DATA-TRAIN-VAL-DISJOINT: `train_shards: 80` is the canonical CaseOps export on
# Hugging Face; a local rebuild over the whole stream logs about 1,500). A run that reads more
# training shards than the export holds built its own.
PUBLISHED_TRAIN_SHARDS = {"fineweb10B_sp8192_lossless_caps_caseops_v1_reserved": 80}

_TEXT_FILES_RE = re.compile(r"(?:^|/)(?:[^/]+\.md|[^/]+\.sh|submission\.json|[^/]+\.txt)$", re.I)
_LOG_RE = re.compile(r"\.(?:log|txt)$", re.I)
# `--val-docs 10000`, `--val-docs=10_000`, "`--val-docs=10000`"
_VAL_DOCS_ARG_RE = re.compile(r"--val[-_]docs[`'\"]?\s*(?:=|\s)\s*[`'\"]?(\d[\d_,]*)")
_TRAIN_SHARDS_RE = re.compile(r"\btrain_shards\s*[:=]\s*(\d+)")
_DATASET_NAME_RE = re.compile(r"fineweb10B_\w+")
_VAL_OPTION_RE = re.compile(r"^--?(?:num[-_])?val[-_]docs$|^--?n[-_]val[-_]docs$", re.I)
_MAX_SCRIPT_BYTES = 2_000_000
_MAX_TEXT_BYTES = 4_000_000
_MAX_LINE = 4000

_PREP = '''import argparse
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", required=True)
    ap.add_argument("--val-docs", type=int, default={default})
    args = ap.parse_args()
    out = "datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"
    val, train = [], []
    for n, doc in enumerate(read_docs(args.docs)):
        (val if n < args.val_docs else train).extend(doc)
    np.array(val, dtype=np.uint16).tofile(f"{{out}}/fineweb_val_000000.bin")
    np.array(train, dtype=np.uint16).tofile(f"{{out}}/fineweb_train_000000.bin")


main()
'''


def _log_lines(shards: int):
    return lambda text: (f"datasets_dir: /data/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved\n"
                         f"train_shards: {shards}\n" + text)


class ValidationDocsInTrainingShards(Check):
    """The training shards were built from a split that leaves validation documents in them.

    What it checks:
        Data-preparation scripts in the folder that split one document stream into
        validation (`fineweb_val_*`) and training (`fineweb_train_*`) shards by a
        validation-document count (`--val-docs`). The validation set is the first 50,000
        documents (R-DATA-CANONICAL-VAL), so a split at fewer documents writes the rest of
        the validation documents into the training shards. It reports when the folder says
        its training shards were built with such a count (`--val-docs=10000` in its README,
        notes, scripts or submission.json, and no count of 50,000 or more), or when the
        script's default is such a count and the logs show the run read more training
        shards than the published export of that dataset holds (a local rebuild with the
        default split; `train_shards: 1499` where the export has 80).

    Why it breaks the rules:
        R-DATA-TRAIN-VAL-DISJOINT, R-DATA-NO-VAL-IN-TRAINING: the training shards must not
        contain validation documents. The `prepare_caseops_data.py` default of 10,000
        validation documents put 80% of the validation set into training; #2127 found it in
        15 of 34 CaseOps submissions and #2146 excluded them (#2018, #2118, #2130).

    Example:
        A folder shipping `prepare_caseops_data.py` (default `--val-docs 10000`) whose logs
        print `train_shards: 1499` for the CaseOps dataset.

    Legal alternative:
        Use the published export (`romeerp/parameter-golf-caseops-v1`) or rebuild with
        `--val-docs 50000`.

    Known limitations:
        Only splits by a document count given as a `--val-docs` option are read; a rebuild
        the logs cannot tell from the export (the same shard count) and that the folder does
        not describe is not seen.
    """

    CODE = "PG112"
    NAME = "validation-docs-in-training-shards"
    CATEGORY = Category.LEGALITY
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.MEDIUM
    REFERENCES = ("R-DATA-TRAIN-VAL-DISJOINT", "R-DATA-NO-VAL-IN-TRAINING")

    VALID = [
        FolderCase("a prep script splitting at 50,000 documents, logs of a local rebuild", edits={
            "prepare_data.py": _PREP.format(default="50_000"),
            "train_seed1337.log": _log_lines(1499)}),
        FolderCase("a prep script with the short default, logs of the published export", edits={
            "prepare_data.py": _PREP.format(default="10_000"),
            "train_seed1337.log": _log_lines(80)}),
        FolderCase("the README says the rebuild passed --val-docs 50000", edits={
            "prepare_data.py": _PREP.format(default="10_000"),
            "train_seed1337.log": _log_lines(1499),
            "README.md": lambda text: text + "\nData: `python3 prepare_data.py --docs docs.jsonl --val-docs 50000`\n"}),
    ]
    INVALID = [
        FolderCase("the short default split, and logs of a local rebuild", edits={
            "prepare_data.py": _PREP.format(default="10_000"),
            "train_seed1337.log": _log_lines(1499)},
            message_contains=("prepare_data.py", "10,000", "train_shards: 1499", "80")),
        FolderCase("the notes say the training shards were built with --val-docs=10000", edits={
            "prepare_data.py": _PREP.format(default="50_000"),
            "DATASET_NOTES.md": "We rebuilt the training shards with the default `--val-docs=10000`.\n"},
            message_contains=("DATASET_NOTES.md:1", "--val-docs=10000", "40,000")),
    ]

    def run(self, ctx):
        scripts = [s for s in (_split_script(ctx, path) for path in sorted(ctx.folder.files)
                               if path.endswith(".py")) if s is not None]
        if not scripts:
            raise SkipCheck("no data-preparation script that splits validation from training documents")
        stated = list(_stated_counts(ctx))
        canonical = [s for s in stated if s[2] >= CANONICAL_VAL_DOCS]
        short = [s for s in stated if s[2] < CANONICAL_VAL_DOCS]
        if short and not canonical:
            path, line, count, text = short[0]
            yield self.finding(
                f"{path}:{line} says the data was prepared with `{text}`: the validation set is the first "
                f"{CANONICAL_VAL_DOCS:,} documents, so a split at {count:,} writes the other "
                f"{CANONICAL_VAL_DOCS - count:,} validation documents into the training shards "
                f"(R-DATA-TRAIN-VAL-DISJOINT; #2127, #2146)",
                location=Location(path, line, line), excerpt=text,
                values={"val_docs": count, "script": scripts[0].path})
            return
        if canonical:
            return
        for script in scripts:
            if script.default is None or script.default >= CANONICAL_VAL_DOCS:
                continue
            for name in script.datasets:
                published = PUBLISHED_TRAIN_SHARDS.get(name)
                if published is None:
                    continue
                seen = _logged_train_shards(ctx, name)
                over = [(p, n, c) for p, n, c in seen if c > published]
                if not over:
                    continue
                log, number, count = over[0]
                yield self.finding(
                    f"{script.path}:{script.line} splits validation from training at {script.default:,} documents by "
                    f"default, and {log}:{number} logs `train_shards: {count}` for `{name}`, whose published export "
                    f"holds {published}: a local rebuild with the default split puts "
                    f"{CANONICAL_VAL_DOCS - script.default:,} of the first {CANONICAL_VAL_DOCS:,} (validation) "
                    f"documents into the training shards (R-DATA-TRAIN-VAL-DISJOINT; #2127)",
                    location=Location(log, number, number),
                    related=[Location(script.path, script.line, script.line)],
                    values={"val_docs_default": script.default, "train_shards": count, "published": published})
                return


class _SplitScript:
    def __init__(self, path: str, line: int, default: int | None, datasets: list[str]):
        self.path, self.line, self.default, self.datasets = path, line, default, datasets


def _split_script(ctx, path: str) -> _SplitScript | None:
    """A script (parsed, never run) that writes both validation and training shards and takes
    a validation-document count option."""
    text = ctx.read_text(path)
    if text is None or len(text) > _MAX_SCRIPT_BYTES or "fineweb_val" not in text or "fineweb_train" not in text:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    option = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument" \
                and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and _VAL_OPTION_RE.match(a.value)
                        for a in node.args):
            default = next((k.value for k in node.keywords if k.arg == "default"), None)
            value = default.value if isinstance(default, ast.Constant) and isinstance(default.value, int) else None
            option = (node.lineno, value)
            break
    if option is None:
        return None
    names = sorted({m.group(0) for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                    for m in _DATASET_NAME_RE.finditer(node.value)})
    return _SplitScript(path, option[0], option[1], names)


def _stated_counts(ctx):
    """(path, line, count, text) of each `--val-docs N` the folder's prose, scripts and
    submission.json state."""
    for path in sorted(ctx.folder.files):
        if not _TEXT_FILES_RE.search(path):
            continue
        text = ctx.read_text(path)
        if text is None or len(text) > _MAX_TEXT_BYTES:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if len(line) > _MAX_LINE or "val" not in line:
                continue
            for m in _VAL_DOCS_ARG_RE.finditer(line):
                digits = m.group(1).replace("_", "").replace(",", "")
                if digits.isdigit() and len(digits) <= 9:
                    yield path, number, int(digits), m.group(0).strip("`'\" ")


def _logged_train_shards(ctx, dataset: str) -> list[tuple[str, int, int]]:
    """(log, line, count) of `train_shards: N` lines in logs that name ``dataset``."""
    out = []
    for path in sorted(ctx.folder.files):
        if not _LOG_RE.search(path):
            continue
        text = ctx.read_text(path)
        if text is None or dataset not in text:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if len(line) > _MAX_LINE:
                continue
            m = _TRAIN_SHARDS_RE.search(line)
            if m and "{" not in line:  # not the logging statement of a dumped source
                out.append((path, number, int(m.group(1))))
    return out

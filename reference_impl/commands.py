"""Click commands of the reference implementation: ``bpb`` and ``demo``.

Plain ``click.command`` objects, wired into the ``pgolf-audit`` group by the CLI. torch,
numpy and sentencepiece are imported inside the commands, so importing this module stays
light. Bad input ends with a clear message and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from pgolf_audit.bpb_identity import TokenizerHint, load_ratio_table, resolve_tokenizer

EXIT_DISAGREES = 1
EXIT_ERROR = 2


class ReferenceCommandError(click.ClickException):
    """Bad input (files, formats, options): exit code 2, like the audit's other usage errors."""

    exit_code = EXIT_ERROR


def _load_tokenizer(path: Path):
    try:
        import sentencepiece as spm
    except ImportError:
        raise ReferenceCommandError("sentencepiece is not installed: pip install 'pgolf-audit[reference]'") from None
    if not path.is_file():
        raise ReferenceCommandError(f"{path}: tokenizer file not found")
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as exc:
        raise ReferenceCommandError(f"{path}: not a sentencepiece model ({str(exc).strip().splitlines()[-1]})") from None


LUT_KEYS = {
    "base_bytes": ("base_bytes", "base_bytes_lut"),
    "has_leading_space": ("has_leading_space", "has_leading_space_lut"),
    "is_boundary": ("is_boundary", "is_boundary_token", "is_boundary_token_lut"),
}


def _load_lut_file(path: Path):
    import numpy as np

    from .byte_lut import lut_from_arrays  # numpy (reference extra)

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for key, aliases in LUT_KEYS.items():
                name = next((a for a in aliases if a in data.files), None)
                if name is None:
                    raise ReferenceCommandError(f"{path}: no array named {' or '.join(aliases)} "
                                                f"(found: {', '.join(data.files) or 'none'})")
                arrays[key] = data[name]
        return lut_from_arrays(arrays["base_bytes"], arrays["has_leading_space"], arrays["is_boundary"])
    except ReferenceCommandError:
        raise
    except (OSError, ValueError) as exc:
        raise ReferenceCommandError(f"{path}: not a readable .npz byte table ({exc})") from None


def _text_report(report, tokenizer: Path, pattern: str, shards: int, sp, identity, max_rows: int) -> str:
    lines = [
        f"tokenizer: {tokenizer} ({sp.get_piece_size()} pieces)",
        f"validation: {pattern} ({shards} file{'s' if shards != 1 else ''})",
        f"checked: {report.source}",
        f"tokens: {report.tokens:,}",
        f"documents: {report.documents:,}",
        f"bytes_lut: {report.bytes_accounted:,}",
        f"bytes_exact: {report.bytes_exact:,}",
        f"tokens_per_byte: {report.tokens_per_byte:.6f}  (bytes per token {1 / report.tokens_per_byte:.4f})",
        f"val_bpb/val_loss on this set: {report.bpb_per_loss_ratio():.6f}  (tokens after the first / (exact bytes * ln 2))",
    ]
    if identity is not None:
        lines.append(identity)
    for note in report.notes:
        lines.append(f"note: {note}")
    if report.agrees:
        lines.append("result: the byte table matches the exact decoded bytes")
        return "\n".join(lines)
    lines.append(f"result: DISAGREE: {report.relative_difference:+.4%} bytes; {report.mismatched_documents:,} of "
                 f"{report.documents:,} documents differ")
    for diagnosis in report.diagnoses:
        lines.append(f"  [{diagnosis.kind}] {diagnosis.message}")
        if diagnosis.pieces:
            lines.append(f"    pieces: {', '.join(diagnosis.pieces)}")
    lines.append(f"pieces that disagree (from {report.attributed_documents:,} documents):")
    for row in report.rows[:max_rows]:
        lines.append(f"  {row.describe()}")
    return "\n".join(lines)


def _identity_line(tokenizer: Path, sp, ratio: float):
    """Compare with the challenge tokenizer's reference ratio when the tokenizer is one of them."""
    table = load_ratio_table()
    key, _ = resolve_tokenizer(TokenizerHint(tokenizer_path=str(tokenizer)), table)
    reference_tokenizer = key is not None and tokenizer.name in table.tokenizers[key].tokenizer_files
    if not reference_tokenizer or table.tokenizers[key].vocab_size != sp.get_piece_size():
        return None, None
    reference = table.tokenizers[key].ratio
    deviation = ratio / reference - 1
    return (f"reference ratio for {key}: {reference:.6f} (this set {deviation:+.3%})",
            {"tokenizer": key, "reference_ratio": reference, "relative_deviation": deviation})


@click.command("bpb")
@click.option("--tokenizer", "tokenizer_path", required=True, type=click.Path(path_type=Path),
              help="sentencepiece .model file")
@click.option("--val", "val_pattern", required=True, help="glob of validation shards, e.g. 'data/fineweb_val_*.bin'")
@click.option("--lut", "lut_path", type=click.Path(path_type=Path),
              help="check this byte table (.npz with base_bytes, has_leading_space, is_boundary[_token]) "
                   "instead of the one built from the tokenizer")
@click.option("--sidecar", "sidecar_pattern",
              help="check per-token byte counts from shard files (e.g. 'fineweb_val_bytes_*.bin') instead")
@click.option("--max-documents", default=200, show_default=True,
              help="documents decoded piece by piece to name the pieces behind a disagreement")
@click.option("--max-rows", default=20, show_default=True, help="disagreeing piece groups to list")
@click.option("--seq-len", type=int, default=0,
              help="also give val_bpb/val_loss for the set the challenge scores: the first "
                   "((tokens - 1) // SEQ_LEN) * SEQ_LEN targets (e.g. 1024)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def bpb_command(tokenizer_path: Path, val_pattern: str, lut_path: Path | None, sidecar_pattern: str | None,
                max_documents: int, max_rows: int, seq_len: int, fmt: str) -> None:
    """Check the per-token byte accounting of a tokenizer on validation shards.

    Counts the bytes of the validation tokens twice, with the challenge's per-token byte table
    and by decoding every document to UTF-8, prints tokens, bytes_lut, bytes_exact, tokens per
    byte and the val_bpb/val_loss ratio they imply, and, where the counts disagree, the pieces
    responsible and the known bug family they match. Exit 0 when they agree, 1 when they
    disagree, 2 on bad input.
    """
    if lut_path and sidecar_pattern:
        raise ReferenceCommandError("--lut and --sidecar check different things; give one of them")
    try:
        import numpy as np
    except ImportError:
        raise ReferenceCommandError("numpy is not installed: pip install 'pgolf-audit[reference]'") from None
    from .byte_accounting import check_lut, compare_accounting  # numpy (reference extra)
    from .byte_lut import build_byte_lut  # numpy (reference extra)
    from .shards import ShardError, list_shards, load_tokens  # numpy (reference extra)

    sp = _load_tokenizer(tokenizer_path)
    try:
        shards = list_shards(val_pattern)
        tokens = load_tokens(val_pattern, int(sp.get_piece_size()), str(tokenizer_path)).astype(np.int64)
        if tokens.size < 2:
            raise ReferenceCommandError(f"{val_pattern}: fewer than 2 validation tokens")
        options = dict(max_attributed_documents=max_documents, max_rows=max(max_rows, 1))
        if sidecar_pattern:
            counts = load_tokens(sidecar_pattern).astype(np.int64)
            if counts.size != tokens.size:
                raise ReferenceCommandError(f"{sidecar_pattern}: {counts.size:,} byte counts for {tokens.size:,} "
                                            f"validation tokens: sidecar and shards do not match")
            report = compare_accounting(sp, tokens, counts, source=f"sidecar {sidecar_pattern}", **options)
        else:
            lut = _load_lut_file(lut_path) if lut_path else build_byte_lut(sp)
            if lut_path and lut.table_size < sp.get_piece_size():
                raise ReferenceCommandError(f"{lut_path}: {lut.table_size} entries for a tokenizer of "
                                            f"{sp.get_piece_size()} pieces")
            report = check_lut(sp, tokens, lut, source=f"lut {lut_path}" if lut_path else "lut (from tokenizer)",
                               **options)
    except ShardError as exc:
        raise ReferenceCommandError(str(exc)) from None
    ratio = report.bpb_per_loss_ratio()
    scored_set = None
    if seq_len > 0:
        # The challenge scores whole windows; its byte denominator is the table's bytes of those targets.
        scored = ((tokens.size - 1) // seq_len) * seq_len
        if scored == 0:
            raise ReferenceCommandError(f"--seq-len {seq_len}: longer than the {tokens.size:,}-token validation set")
        counts = counts if sidecar_pattern else lut.stream_bytes(tokens)
        scored_bytes = int(counts[1:scored + 1].sum())
        ratio = scored / (scored_bytes * math.log(2))
        scored_set = {"seq_len": seq_len, "scored_tokens": scored, "scored_bytes": scored_bytes,
                      "bpb_per_loss_ratio": ratio}
    identity_text, identity = _identity_line(tokenizer_path, sp, ratio)
    if fmt == "json":
        doc = {"tokenizer": str(tokenizer_path), "pieces": int(sp.get_piece_size()), "val": val_pattern,
               "val_files": [str(p) for p in shards]} | report.to_dict()
        doc["reference"] = identity
        doc["scored_set"] = scored_set
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        text = _text_report(report, tokenizer_path, val_pattern, len(shards), sp, identity_text, max_rows)
        if scored_set:
            text = text.replace("\nresult: ", f"\nchallenge scored set (seq_len {seq_len}): {scored_set['scored_tokens']:,} "
                                f"targets, {scored_set['scored_bytes']:,} bytes, val_bpb/val_loss "
                                f"{scored_set['bpb_per_loss_ratio']:.6f}\nresult: ", 1)
        click.echo(text)
    if not report.agrees:
        raise click.exceptions.Exit(EXIT_DISAGREES)


@click.command("demo")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="folder to build the demo in (data/ and records/ are written inside)")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--nproc", default=1, show_default=True, help="processes per seed (torchrun) ")
@click.option("--seeds", default=None, help="comma-separated seeds (default 1337,42,2025)")
@click.option("--iterations", type=int, default=None, help="training steps per seed (default: the preset's)")
@click.option("--preset", type=click.Choice(["default", "smoke"]), default="default", show_default=True,
              help="'smoke' is the smallest demo that exercises every step (CI)")
@click.option("--date", default=None, help="record date YYYY-MM-DD (default: today)")
@click.option("--no-audit", is_flag=True, help="write the record without auditing it")
def demo_command(out_dir: Path, device: str, nproc: int, seeds: str | None, iterations: int | None, preset: str,
                 date: str | None, no_audit: bool) -> None:
    """Build a complete record folder from nothing, train it, and audit it.

    Generates a download-free corpus, trains a tokenizer, writes shards, trains the reference
    train_gpt.py for three seeds and writes README.md, submission.json, the logs and the
    artifacts under OUT/records/track_non_record_16mb/<date>_ReferenceDemo/, then prints the
    audit's review. Exit 0 when the audit passes.
    """
    try:
        import torch  # noqa: F401
        import sentencepiece  # noqa: F401
    except ImportError as exc:
        raise ReferenceCommandError(f"{exc.name} is not installed: pip install 'pgolf-audit[reference]'") from None
    import re

    from .demo import DemoError, run_demo, settings_for  # torch and sentencepiece (reference extra), after the check above

    seed_list = None
    if seeds:
        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise ReferenceCommandError(f"--seeds {seeds!r}: expected comma-separated integers") from None
    if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ReferenceCommandError(f"--date {date!r}: expected YYYY-MM-DD")
    if nproc < 1:
        raise ReferenceCommandError("--nproc must be at least 1")
    try:
        result = run_demo(out_dir, device=device, settings=settings_for(preset, seed_list, iterations), nproc=nproc,
                          date=date, audit=not no_audit, log=click.echo)
    except DemoError as exc:
        raise ReferenceCommandError(str(exc)) from None
    click.echo(f"record: {result.record_dir}")
    if result.review is not None:
        click.echo(result.review.rstrip())
    if result.audit_error:
        click.echo(f"audit skipped: {result.audit_error}")
    click.echo(f"demo finished in {result.seconds:.1f} s" + (f"; audit verdict: {result.verdict}" if result.verdict else ""))
    if result.verdict is not None and result.verdict not in ("PASS",):
        raise click.exceptions.Exit(1)

"""Writing a rendered report where the user asked: files given with ``--output`` (each in its
own format) or stdout. ``check``, ``pr`` and ``rerun`` all write through ``write_report``, so
every output is valid UTF-8, standard JSON and free of terminal controls in the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import click

from .model import AuditReport
from .render import render
from .usage import UsageFailure

_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _finite(value):
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def writable_text(text: str, fmt: str) -> str:
    """Text that can be written as UTF-8 and, for JSON, is standard JSON: lone surrogates
    (from a submission's JSON string escapes) become backslash escapes, which JSON reads back
    as the same escape; NaN and infinities, which JSON has no words for, become null."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if fmt == "text":  # terminal escapes and other controls from submitted text, shown, not obeyed
        text = _TERMINAL_CONTROLS.sub(lambda m: ascii(m.group(0))[1:-1], text)
    if fmt == "json":
        special: list[str] = []
        doc = json.loads(text, parse_constant=lambda name: special.append(name) or float("nan"))
        if special:
            text = json.dumps(_finite(doc), indent=2, ensure_ascii=False) + "\n"
    return text


def rendered(report: AuditReport, fmt: str) -> str:
    """The report in ``fmt``, ready to be written."""
    return writable_text(render(report, fmt), fmt)


def parse_outputs(values: Iterable[str], default_fmt: str, known: Iterable[str]) -> list[tuple[str, Path]]:
    """``--output PATH`` writes ``default_fmt``; ``--output FMT:PATH`` writes FMT (repeatable)."""
    known = set(known)
    out = []
    for value in values:
        fmt, sep, path = value.partition(":")
        if sep and fmt in known and path:
            out.append((fmt, Path(path)))
        else:
            out.append((default_fmt, Path(value)))
    return out


def write_report(report: AuditReport, targets: list[tuple[str, Path]], stdout_fmt: str,
                 text: str | None = None) -> None:
    """Each ``(format, path)`` target written, with a one-line verdict on stderr; with no
    target, the report in ``stdout_fmt`` on stdout. ``text`` is the report already rendered in
    ``stdout_fmt`` (the rerun writes it to its own folder too)."""
    for fmt, path in targets:
        body = text if text is not None and fmt == stdout_fmt else rendered(report, fmt)
        try:
            path.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise UsageFailure(f"cannot write {path}: {exc.strerror or exc}") from None
        click.echo(f"{report.verdict.value}: {fmt} report written to {path}", err=True)
    if not targets:
        click.echo(text if text is not None else rendered(report, stdout_fmt), nl=False)

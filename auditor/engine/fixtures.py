"""Annotated fixture scripts: expectations written in the code, checked line by line.

A fixture is a realistic script whose comments say what the rules must report on the next
code line (Semgrep style):

    # expect: PG101            the next line must be reported by PG101 (any severity)
    # expect: PG105(info)      ... at that severity
    # ok: PG101                the next line must not be reported by PG101
    # todo: PG101              a known gap: PG101 should report the next line but does not yet
    # todo-ok: PG110           a known false positive: PG110 reports the next line but should not

Several codes may share one comment (``# expect: PG104, PG106``). Header comments set up
the record folder:

    # fixture-wrap: lzma-raw+b85               ship the script inside a self-extracting wrapper
    # fixture-helper: ngram_tilt.py            add helpers/ngram_tilt.py (annotated the same way)
    # fixture-log: ngram_within_beta=0.0 ...   one training log printing these hyperparameters

Every finding of the selected rules must be expected (or a todo); anything else is an
unexpected finding. ``compare`` returns the per-line differences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cases import build_source_folder
from ..model import Severity

ANNOTATION_RE = re.compile(r"^\s*#\s*(expect|ok|todo-ok|todo):\s*(.+?)\s*$")
CODE_RE = re.compile(r"(PG\d{3})(?:\((error|warning|info)\))?")
HEADER_RE = re.compile(r"^#\s*fixture-(wrap|helper|log):\s*(.+?)\s*$")


@dataclass
class Expectation:
    kind: str                   # expect, ok, todo, todo-ok
    code: str
    path: str                   # file in the record folder
    line: int                   # 1-based line of the code the annotation is about
    severity: Severity | None = None


@dataclass
class Fixture:
    name: str
    source: str
    wrap: str | None = None
    helpers: dict[str, str] = field(default_factory=dict)
    logs: list[dict[str, str]] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)


def parse_annotations(text: str, path: str) -> list[Expectation]:
    lines = text.splitlines()
    out: list[Expectation] = []
    pending: list[tuple[str, str, Severity | None]] = []
    for i, line in enumerate(lines, 1):
        m = ANNOTATION_RE.match(line)
        if m:
            for code, sev in CODE_RE.findall(m.group(2)):
                pending.append((m.group(1), code, Severity(sev) if sev else None))
            continue
        if pending and line.strip() and not line.strip().startswith("#"):
            for kind, code, sev in pending:
                out.append(Expectation(kind, code, path, i, sev))
            pending = []
    return out


def load_fixture(path: Path) -> Fixture:
    text = path.read_text(encoding="utf-8")
    fixture = Fixture(path.stem, text)
    for line in text.splitlines()[:30]:
        m = HEADER_RE.match(line)
        if not m:
            continue
        key, value = m.groups()
        if key == "wrap":
            fixture.wrap = value
        elif key == "helper":
            helper = path.parent / "helpers" / value
            fixture.helpers[value] = helper.read_text(encoding="utf-8")
        elif key == "log":
            fixture.logs.append(dict(item.split("=", 1) for item in value.split()))
    fixture.expectations = parse_annotations(text, "train_gpt.py")
    for name, helper_text in fixture.helpers.items():
        fixture.expectations += parse_annotations(helper_text, name)
    return fixture


def build_fixture_folder(fixture: Fixture, root: Path) -> Path:

    return build_source_folder(fixture.source, root, f"2026-04-20_{fixture.name}", wrap=fixture.wrap,
                               files=fixture.helpers, logs=fixture.logs)


@dataclass
class Comparison:
    """Outcome per annotation and per finding."""

    true_positive: list[Expectation] = field(default_factory=list)
    false_negative: list[Expectation] = field(default_factory=list)
    true_negative: list[Expectation] = field(default_factory=list)
    false_positive: list[tuple[str, str, int, str]] = field(default_factory=list)  # code, path, line, message
    wrong_severity: list[tuple[Expectation, str]] = field(default_factory=list)
    todo_missing: list[Expectation] = field(default_factory=list)
    todo_reported: list[Expectation] = field(default_factory=list)
    known_false_positive: list[Expectation] = field(default_factory=list)  # todo-ok lines still reported
    fixed_false_positive: list[Expectation] = field(default_factory=list)  # todo-ok lines now quiet

    def differences(self) -> list[str]:
        out = []
        for e in self.false_negative:
            out.append(f"{e.path} line {e.line}: expected {e.code}, not reported")
        for e, got in self.wrong_severity:
            out.append(f"{e.path} line {e.line}: expected {e.code} at {e.severity.value}, reported at {got}")
        for code, path, line, message in self.false_positive:
            out.append(f"{path} line {line}: {code} reported, not expected: {message[:160]}")
        return out


def compare(fixture: Fixture, findings, codes: set[str] | None = None) -> Comparison:
    """Findings (objects with code, severity, location) against the fixture's annotations."""
    result = Comparison()
    reported: dict[tuple[str, str, int], list] = {}
    for f in findings:
        if codes is not None and f.code not in codes:
            continue
        # a finding stands for every occurrence it covers (one finding per problem)
        places = [f.location] + [c.get("location") for c in getattr(f, "covers", None) or ()]
        for loc in places:
            if loc is None or loc.start_line is None:
                continue
            reported.setdefault((f.code, loc.path, loc.start_line), []).append(f)
    claimed: set[tuple[str, str, int]] = set()
    for e in fixture.expectations:
        if codes is not None and e.code not in codes:
            continue
        key = (e.code, e.path, e.line)
        hits = reported.get(key, [])
        if e.kind == "expect":
            claimed.add(key)
            if not hits:
                result.false_negative.append(e)
            elif e.severity is not None and not any(h.severity is e.severity for h in hits):
                result.wrong_severity.append((e, "/".join(sorted({h.severity.value for h in hits}))))
            else:
                result.true_positive.append(e)
        elif e.kind == "ok":
            if hits:
                claimed.add(key)
                for h in hits:
                    result.false_positive.append((e.code, e.path, e.line, h.message))
            else:
                result.true_negative.append(e)
        elif e.kind == "todo":
            claimed.add(key)
            (result.todo_reported if hits else result.todo_missing).append(e)
        elif e.kind == "todo-ok":
            claimed.add(key)
            (result.known_false_positive if hits else result.fixed_false_positive).append(e)
    for key, hits in reported.items():
        if key in claimed:
            continue
        for h in hits:
            result.false_positive.append((key[0], key[1], key[2], h.message))
    return result

"""Precision and recall of each legality rule on the project's own cases.

Two sources, counted together per rule:

* the rule's ``VALID`` and ``INVALID`` code examples (each one case);
* the annotated fixture scripts under tests/fixtures/legality: every ``# expect:`` line is an
  illegal case, every ``# ok:`` line a legal one, ``# todo:`` lines are illegal cases the rule
  misses on purpose (known gaps, counted as false negatives), ``# todo-ok:`` lines legal
  ones it reports anyway (known false positives), and any other line a rule reports in a
  fixture is a false positive.

A case counts as found when the rule reports it at the expected line (any severity: a path
disabled in every logged run is still found, at "info").

    python benchmarks/legality_scores.py [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from pgolf_audit import registry
from pgolf_audit.audit import audit_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.cases import build_code_case_folder
from pgolf_audit.engine.fixtures import build_fixture_folder, compare, load_fixture
from pgolf_audit.rulebase import CodeCase

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "legality"


def score() -> dict[str, dict[str, int]]:
    rules = [cls for cls in registry.all_rules() if cls.CODE.startswith("PG1")]
    codes = {cls.CODE for cls in rules}
    table: dict[str, dict[str, int]] = {c: defaultdict(int) for c in codes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = 0
        for cls in rules:
            for kind in ("VALID", "INVALID"):
                for case in getattr(cls, kind):
                    if not isinstance(case, CodeCase):
                        continue
                    n += 1
                    folder = build_code_case_folder(case, root / f"case{n}")
                    result = audit_folder(folder, AuditOptions(select=[cls.CODE]))
                    found = [f for f in result.findings if f.code == cls.CODE]
                    row = table[cls.CODE]
                    if kind == "VALID":
                        row["legal"] += 1
                        row["fp" if found else "tn"] += 1
                    else:
                        row["illegal"] += 1
                        at_line = [f for f in found if case.line is None or (
                            f.location and f.location.start_line == case.line)]
                        row["tp" if at_line else "fn"] += 1
        for path in sorted(FIXTURES.glob("*.py")):
            fixture = load_fixture(path)
            folder = build_fixture_folder(fixture, root / "fixtures")
            result = audit_folder(folder, AuditOptions(select=["PG1"]))
            c = compare(fixture, result.findings, codes)
            for e in c.true_positive + [e for e, _got in c.wrong_severity]:
                table[e.code]["illegal"] += 1
                table[e.code]["tp"] += 1
            for e in c.false_negative + c.todo_missing:
                table[e.code]["illegal"] += 1
                table[e.code]["fn"] += 1
                if e.kind == "todo":
                    table[e.code]["todo"] += 1
            for e in c.todo_reported:
                table[e.code]["illegal"] += 1
                table[e.code]["tp"] += 1
            for e in c.true_negative + c.fixed_false_positive:
                table[e.code]["legal"] += 1
                table[e.code]["tn"] += 1
            for e in c.known_false_positive:
                table[e.code]["legal"] += 1
                table[e.code]["fp"] += 1
            annotated_ok = {(e.code, e.path, e.line) for e in fixture.expectations if e.kind == "ok"}
            for code, fpath, line, _message in c.false_positive:
                if (code, fpath, line) not in annotated_ok:
                    table[code]["legal"] += 1  # an unannotated line the rule reported
                table[code]["fp"] += 1
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    table = score()
    names = {cls.CODE: cls.NAME for cls in registry.all_rules()}
    header = ["rule", "legal cases", "illegal cases", "TP", "FP", "FN", "precision", "recall", "known gaps"]
    rows = []
    totals: dict[str, int] = defaultdict(int)
    for code in sorted(table):
        r = table[code]
        for k in ("legal", "illegal", "tp", "fp", "fn", "todo"):
            totals[k] += r[k]
        rows.append(_row(f"{code} {names[code]}", r))
    rows.append(_row("all", totals))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0


def _row(label: str, r) -> list[str]:
    tp, fp, fn = r["tp"], r["fp"], r["fn"]
    precision = f"{tp / (tp + fp):.2f}" if tp + fp else "n/a"
    recall = f"{tp / (tp + fn):.2f}" if tp + fn else "n/a"
    return [label, str(r["legal"]), str(r["illegal"]), str(tp), str(fp), str(fn), precision, recall, str(r["todo"])]


if __name__ == "__main__":
    sys.exit(main())

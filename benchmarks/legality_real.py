"""Precision and recall of each legality rule (PG1xx) on real submissions.

Data (read only, never copied): ``../shared`` beside the repository.

* ``records/<track>/<folder>``: folders the maintainers merged, all legal at their date;
* ``labeled/<verdict>/<pr>_<name>`` with ``labeled/labels.json``, a list of entries
  ``{"folder": "<verdict>/<pr>_<name>", "verdict": ..., "rules": ["R-...", ...], ...}``
  where ``rules`` are the rule ids (docs/rules.md) the reviewers cited for that verdict.

Only the ``illegal`` and ``legal`` labeled folders and the records are used; the other
verdicts (over-limit, invalid-metric, format-problem...) say nothing about legality.

What is counted, per PG1xx rule (its ``references``: the rule ids in the rule class's
``REFERENCES``, read from the report so they match the code that ran):

* TP: a labeled ``illegal`` folder whose label cites one of the rule's references, and
  the rule reports an error there;
* FN: such a folder where the rule reports no error (a warning or an info is a miss: only
  an error fails a folder);
* FP: a record folder or a labeled ``legal`` folder where the rule reports an error. All
  of them count, whatever the labels cite: a legal folder must get no legality error.

An ``illegal`` folder the rule reports but whose label cites none of its references counts
neither way for that rule (the reviewers did not say why it is illegal in the rule's terms);
it still counts in the "any PG1xx" row. That row takes every labeled ``illegal`` folder:
TP when some PG1xx rule reports an error, FN when none does; FP is every record or ``legal``
folder with an error from some PG1xx rule.

Precision = TP / (TP + FP), recall = TP / (TP + FN); "–" where the denominator is 0.
Suppressed findings do not count (they do not fail a folder either). A folder whose audit
produced no report is left out of every count and listed.

The folders are audited by the CLI (``python -m pgolf_audit check --format json``) in one
process over all of them; any folder missing from that report is audited again on its own.

    python benchmarks/legality_real.py [--jobs 2] [--output FILE] [--shared DIR]

Prints Markdown (a table, then the misses and false alarms of each rule by folder name).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared"
DASH = "–"


@dataclass(frozen=True)
class Folder:
    """One audited folder: its kind, the rule ids its label cites, the PG1xx codes that erred."""

    name: str
    kind: str  # "record", "legal" or "illegal"
    cited: frozenset[str] = frozenset()
    errors: frozenset[str] = frozenset()


@dataclass
class Score:
    tp: list[str] = field(default_factory=list)
    fn: list[str] = field(default_factory=list)
    fp: list[str] = field(default_factory=list)

    def precision(self) -> float | None:
        n = len(self.tp) + len(self.fp)
        return len(self.tp) / n if n else None

    def recall(self) -> float | None:
        n = len(self.tp) + len(self.fn)
        return len(self.tp) / n if n else None


ANY = "any PG1xx"


def count(references: dict[str, set[str]], folders: list[Folder]) -> dict[str, Score]:
    """Per rule code (and ``ANY``): the folder names counted as TP, FN and FP (see the top)."""
    scores = {code: Score() for code in references}
    scores[ANY] = Score()
    for f in folders:
        if f.kind == "illegal":
            for code, refs in references.items():
                if f.cited & refs:
                    (scores[code].tp if code in f.errors else scores[code].fn).append(f.name)
            (scores[ANY].tp if f.errors else scores[ANY].fn).append(f.name)
        elif f.kind in ("record", "legal"):
            for code in f.errors:
                if code in scores:
                    scores[code].fp.append(f.name)
            if f.errors:
                scores[ANY].fp.append(f.name)
        else:
            raise ValueError(f"unknown folder kind {f.kind!r}")
    return scores


def _ratio(x: float | None) -> str:
    return DASH if x is None else f"{x:.2f}"


def render(rules: dict[str, dict], folders: list[Folder], notes: list[str]) -> str:
    """The Markdown report: a table, the overall line, then the FN and FP folders of each rule."""
    references = {code: set(r["references"]) for code, r in rules.items()}
    scores = count(references, folders)
    kinds = {k: [f for f in folders if f.kind == k] for k in ("illegal", "legal", "record")}
    out = ["## Legality rules (PG1xx) on real folders", ""]
    out += [f"{len(kinds['record'])} merged record folders, {len(kinds['legal'])} labeled legal and "
            f"{len(kinds['illegal'])} labeled illegal PR folders. TP / FN: labeled illegal folders whose label "
            "cites one of the rule's references, with / without an error from the rule. FP: record or legal "
            "folders with an error from the rule.", ""]
    out += ["| Rule | Illegal folders citing it | TP | FN | FP | Precision | Recall |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for code in [*sorted(rules), ANY]:
        s = scores[code]
        label = f"{code} {rules[code]['name']}" if code in rules else f"**{ANY}**"
        out.append(f"| {label} | {len(s.tp) + len(s.fn)} | {len(s.tp)} | {len(s.fn)} | {len(s.fp)} "
                   f"| {_ratio(s.precision())} | {_ratio(s.recall())} |")
    a = scores[ANY]
    legal_failed = [f.name for f in kinds["legal"] if f.errors]
    records_failed = [f.name for f in kinds["record"] if f.errors]
    out += ["", f"Overall: {len(a.tp)}/{len(kinds['illegal'])} labeled illegal folders get an error from some "
            f"PG1xx rule; legal folders wrongly failed: {len(legal_failed)}/{len(kinds['legal'])} labeled legal, "
            f"{len(records_failed)}/{len(kinds['record'])} merged records.", ""]
    cited = set().union(*(f.cited for f in kinds["illegal"])) if kinds["illegal"] else set()
    uncovered = sorted(cited - set().union(*references.values()))
    if uncovered:
        out += [f"Rule ids cited by illegal labels that no PG1xx rule references: {', '.join(uncovered)}.", ""]
    out += ["### Misses (FN) and false alarms (FP) by rule", ""]
    listed = False
    for code in [*sorted(rules), ANY]:
        s = scores[code]
        for what, names in (("FN", s.fn), ("FP", s.fp)):
            if names:
                out.append(f"- {code} {what}: {', '.join(f'`{n}`' for n in sorted(names))}")
                listed = True
    if not listed:
        out.append("None.")
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def _run_cli(paths: list[Path], jobs: int) -> tuple[dict, list[dict]]:
    """Audit paths in one process; returns the report's tool entry and its per-folder results."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pgolf_audit", "check", "--format", "json", "--jobs", str(jobs),
               "-o", str(report), *map(str, paths)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        if p.returncode not in (0, 1, 2) or not report.is_file():
            raise RuntimeError(f"rc={p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1][:200]}")
        data = json.loads(report.read_text())
    return data["tool"], data["results"] if "results" in data else [data]


def audit(paths: list[Path], jobs: int) -> tuple[dict, dict[Path, dict], list[str]]:
    """Results by resolved path: one tree run, then one run per folder it did not report."""
    notes: list[str] = []
    tool: dict = {}
    by_path: dict[Path, dict] = {}
    try:
        tool, results = _run_cli(paths, jobs)
        by_path = {Path(r["path"]).resolve(): r for r in results}
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        notes.append(f"The tree run failed ({e}); folders were audited one by one.")
    for path in paths:
        if path.resolve() in by_path:
            continue
        try:
            tool_one, results = _run_cli([path], 1)
            tool = tool or tool_one
            by_path[path.resolve()] = results[0]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as e:
            notes.append(f"Not audited, left out of the counts: `{path.name}` ({e}).")
    return tool, by_path, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder [../shared]")
    ap.add_argument("--jobs", type=int, default=2, help="folders audited in parallel [2]")
    ap.add_argument("--output", type=Path, help="also write the Markdown to this file")
    a = ap.parse_args(argv)
    shared = a.shared
    if not (shared / "records").is_dir() or not (shared / "labeled" / "labels.json").is_file():
        print(f"skipped: no records/ or labeled/labels.json under {shared}")
        return 0

    folders: list[tuple[Path, str, frozenset[str]]] = []
    for track in sorted((shared / "records").iterdir()):
        if track.is_dir():
            folders += [(f, "record", frozenset()) for f in sorted(track.iterdir()) if f.is_dir()]
    for label in json.loads((shared / "labeled" / "labels.json").read_text()):
        if label["verdict"] in ("legal", "illegal"):
            folders.append((shared / "labeled" / label["folder"], label["verdict"], frozenset(label["rules"] or ())))

    tool, by_path, notes = audit([f for f, _, _ in folders], a.jobs)
    rules = {r["code"]: r for r in tool.get("rules", [])
             if r["code"].startswith("PG1") and r.get("category") == "legality"}
    audited: list[Folder] = []
    incomplete: list[str] = []
    for path, kind, cited in folders:
        result = by_path.get(path.resolve())
        if result is None:
            continue
        errors = frozenset(f["code"] for f in result.get("findings", [])
                           if f["code"] in rules and f["severity"] == "error" and not f.get("suppressed"))
        audited.append(Folder(path.name, kind, cited, errors))
        if result.get("verdict") == "INCOMPLETE":
            incomplete.append(path.name)
    if incomplete:
        notes.append("Verdict INCOMPLETE (some checks did not run; counted as reported): "
                     + ", ".join(f"`{n}`" for n in sorted(incomplete)) + ".")
    notes.append(f"pgolf-audit {tool.get('version', '?')}, rules {tool.get('rules_digest', '?')}.")
    text = render(rules, audited, notes)
    print(text, end="")
    if a.output:
        a.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

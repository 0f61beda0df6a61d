"""How much the AST rules add to an audit, measured against one libcst parse.

Builds a records tree from the repository's own scripts: folders whose train_gpt.py is a
large script (~60-160 KB) made by concatenating the bundled example's readable source and
the legality fixtures, half of them shipped as lzma/zlib + base85 self-extracting wrappers.
Two sets:

* ``typical``: the example and the legal fixtures with one illegal fixture mixed in, so a
  folder has a handful of findings, like a real submission;
* ``stress``: every fixture, legal and illegal, so findings sit in dozens of functions.

For each folder and each repetition, back to back: a bare ``libcst.parse_module`` of the
unwrapped source; the AST rules alone (the code model, the analysis and every PG1xx rule,
on a context whose module is already parsed, findings and their lines included); the full
audit of the folder (every rule, logs, code accounting, tables); and the same audit without
the PG1xx rules, which shows what the rest of the audit costs. Reported: the best time of
each and the median of the per-repetition ratios, which is robust to a busy machine.
Goals: AST rules <= 1x parse, full audit <= 2x parse.

    python benchmarks/bench_audit.py [--repeat 5] [--set typical|stress|both] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import libcst as cst

from pgolf_audit import registry
from pgolf_audit.audit import audit_folder, run_ast_rules
from pgolf_audit.context import AuditContext, AuditOptions
from pgolf_audit.cases import build_source_folder
from pgolf_audit.folder import RecordFolder
from pgolf_audit.rulebase import AstRule

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "legality"
EXAMPLE = ROOT / "tests" / "fixtures" / "example_source" / "train_gpt.py"
SIZES = [(60_000, None), (80_000, "lzma-raw+b85"), (100_000, None), (120_000, "lzma-raw+b85"),
         (150_000, None), (150_000, "zlib+b85")]


def _text(path: Path) -> str:
    # fixture headers would add helper imports and logs; here the scripts are plain text
    return path.read_text().replace("# fixture-", "# bench-")


def sources(kind: str) -> list[tuple[str, str, str | None]]:
    legal = [EXAMPLE] + sorted(FIXTURES.glob("legal_*.py"))
    illegal = sorted(p for p in FIXTURES.glob("*.py") if not p.name.startswith("legal_"))
    out = []
    for i, (size, wrap) in enumerate(SIZES):
        if kind == "typical":
            parts = [_text(illegal[i % len(illegal)])] + [_text(p) for p in legal]
        else:
            everything = [EXAMPLE] + sorted(FIXTURES.glob("*.py"))
            parts = [_text(p) for p in everything[i % len(everything):] + everything[: i % len(everything)]]
        chunks, total, k = [], 0, 0
        while total < size:
            chunks.append(parts[k % len(parts)])
            total += len(chunks[-1])
            k += 1
        out.append((f"{kind}{i + 1}_{size // 1000}k{'_wrapped' if wrap else ''}", "\n\n".join(chunks), wrap))
    return out


def measure(folder: Path, source: str, ast_rules: list, repeat: int) -> dict:
    parses, rules, audits, rule_ratios, audit_ratios, others = [], [], [], [], [], []
    findings = 0
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        cst.parse_module(source)
        parse_s = time.perf_counter() - t0

        ctx = AuditContext(RecordFolder.open(folder), AuditOptions())
        ctx.code_module  # noqa: B018  (the audit's own parse, not part of the rules' cost)
        gc.collect()
        t0 = time.perf_counter()
        results = list(run_ast_rules(ctx, ast_rules))
        rules_s = time.perf_counter() - t0
        findings = sum(len(f) for f, _o in results)

        gc.collect()
        t0 = time.perf_counter()
        audit_folder(folder, AuditOptions())
        audit_s = time.perf_counter() - t0

        gc.collect()
        t0 = time.perf_counter()
        audit_folder(folder, AuditOptions(ignore=["PG1"]))
        others.append((time.perf_counter() - t0) / parse_s)

        parses.append(parse_s)
        rules.append(rules_s)
        audits.append(audit_s)
        rule_ratios.append(rules_s / parse_s)
        audit_ratios.append(audit_s / parse_s)
    return {"parse": min(parses), "rules": min(rules), "audit": min(audits), "findings": findings,
            "rules_x": statistics.median(rule_ratios), "audit_x": statistics.median(audit_ratios),
            "others_x": statistics.median(others)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--set", choices=("typical", "stress", "both"), default="both")
    parser.add_argument("--keep", type=Path, help="build the records tree here and keep it")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="pgolf-bench-"))
    ast_rules = [cls for cls in registry.all_rules() if issubclass(cls, AstRule)]
    kinds = ["typical", "stress"] if args.set == "both" else [args.set]
    try:
        for kind in kinds:
            folders = []
            for name, source, wrap in sources(kind):
                logs = [{"ttt_enabled": "True", "ngram_within_beta": "0.0"}]
                folders.append((build_source_folder(source, root, f"2026-04-20_{name}", wrap=wrap, logs=logs), source))
            audit_folder(folders[0][0], AuditOptions())  # warm imports and caches
            print(f"\n[{kind}] best of {args.repeat}; ratios are medians of per-repetition ratios")
            print(f"{'folder':<34} {'source':>9} {'finds':>5} {'parse':>7} {'AST rules':>9} {'x':>6} "
                  f"{'full audit':>10} {'x':>6} {'audit w/o PG1':>13}")
            rows = []
            for folder, source in folders:
                m = measure(folder, source, ast_rules, args.repeat)
                rows.append(m)
                print(f"{folder.name[11:]:<34} {len(source.encode()) / 1000:>7.1f}kB {m['findings']:>5} "
                      f"{m['parse']:>6.3f}s {m['rules']:>8.3f}s {m['rules_x']:>5.2f}x {m['audit']:>9.3f}s "
                      f"{m['audit_x']:>5.2f}x {m['others_x']:>12.2f}x")
            parse = sum(r["parse"] for r in rows)
            print(f"{'total (sum of best times)':<34} {'':>9} {sum(r['findings'] for r in rows):>5} {parse:>6.3f}s "
                  f"{sum(r['rules'] for r in rows):>8.3f}s {sum(r['rules'] for r in rows) / parse:>5.2f}x "
                  f"{sum(r['audit'] for r in rows):>9.3f}s {sum(r['audit'] for r in rows) / parse:>5.2f}x")
        print("\ngoals: AST rules <= 1.00x parse, full audit <= 2.00x parse")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

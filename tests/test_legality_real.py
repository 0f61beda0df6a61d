"""The counting of benchmarks/legality_real.py, on made-up folders."""

from __future__ import annotations

from benchmark_modules import load

lr = load("legality_real")

REFS = {"PG901": {"R-A", "R-B"}, "PG902": {"R-C"}}


def F(name, kind, cited=(), errors=()):
    return lr.Folder(name, kind, frozenset(cited), frozenset(errors))


FOLDERS = [
    F("bad-a-found", "illegal", {"R-A"}, {"PG901"}),
    F("bad-b-missed", "illegal", {"R-B", "R-X"}, ()),
    F("bad-c-other-rule", "illegal", {"R-C"}, {"PG901"}),  # PG901 erred but the label cites only PG902's id
    F("bad-x-uncited", "illegal", {"R-X"}, ()),
    F("rec-clean", "record"),
    F("rec-alarm", "record", (), {"PG902"}),
    F("ok-alarm", "legal", {"R-A"}, {"PG901", "PG902"}),
    F("ok-clean", "legal", {"R-C"}),
]


def test_counts_per_rule():
    s = lr.count(REFS, FOLDERS)
    assert (s["PG901"].tp, s["PG901"].fn, s["PG901"].fp) == (["bad-a-found"], ["bad-b-missed"], ["ok-alarm"])
    assert (s["PG902"].tp, s["PG902"].fn, sorted(s["PG902"].fp)) == ([], ["bad-c-other-rule"], ["ok-alarm", "rec-alarm"])
    assert s["PG901"].precision() == 0.5 and s["PG901"].recall() == 0.5
    assert s["PG902"].precision() == 0.0 and s["PG902"].recall() == 0.0


def test_any_row_counts_every_illegal_folder():
    a = lr.count(REFS, FOLDERS)[lr.ANY]
    assert sorted(a.tp) == ["bad-a-found", "bad-c-other-rule"]
    assert sorted(a.fn) == ["bad-b-missed", "bad-x-uncited"]
    assert sorted(a.fp) == ["ok-alarm", "rec-alarm"]


def test_undefined_ratios_and_markdown():
    s = lr.count({"PG903": {"R-Z"}}, [F("rec", "record")])
    assert s["PG903"].precision() is None and s["PG903"].recall() is None
    rules = {code: {"name": code.lower(), "references": sorted(refs)} for code, refs in REFS.items()}
    text = lr.render(rules, FOLDERS, [])
    assert "| PG901 pg901 | 2 | 1 | 1 | 1 | 0.50 | 0.50 |" in text
    assert "Overall: 2/4 labeled illegal folders" in text
    assert "1/2 labeled legal, 1/2 merged records" in text
    assert "no PG1xx rule references: R-X." in text
    assert "- PG901 FN: `bad-b-missed`" in text


def test_skips_without_shared(tmp_path, capsys):
    assert lr.main(["--shared", str(tmp_path / "absent")]) == 0
    assert capsys.readouterr().out.startswith("skipped:")

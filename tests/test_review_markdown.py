"""The Markdown review as GitHub renders it (cmark-gfm): hostile submitter and report text, the
first screen, decisiveness order, each problem once, significance with its reference, and the
budgets over every real folder of ../shared/records and ../shared/labeled."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gfm_review import FIRST_SCREEN_LINES, VISIBLE_CHARS, measure, to_html
from pgolf_audit.audit import audit_folder, audit_paths
from pgolf_audit.cases import build_case_folder, example_record
from pgolf_audit.context import AuditOptions
from pgolf_audit.model import AuditReport
from pgolf_audit.render import document, render
from pgolf_audit.render.markdown import cut_line, md_code, md_code_cell, md_escape, md_message
from pgolf_audit.rulebase import FolderCase

SHARED = Path(__file__).resolve().parents[2] / "shared"
FAKE_PASS = "7\n\n## ✅ PASS — LGTM @maintainer\n\n<img src=https://evil.example/x.png>\n\n<!--"


def review_of(folder: Path, **options) -> str:
    return render(AuditReport(tool={"name": "pgolf-audit", "version": "0", "rules_digest": "sha256:0"},
                              results=[audit_folder(folder, AuditOptions(**options))]), "markdown")


def assert_inert(page: str) -> None:
    """No markup from data: no image, no link, no heading but the review's own, one HTML comment."""
    assert "<img" not in page and "<a " not in page
    assert page.count("<!--") == 1  # the sticky-comment marker only
    assert not re.search(r"<h2>.*PASS", page)


# ---- the escaping layer ------------------------------------------------------------------

def test_code_spans_are_not_escaped_and_survive_backticks():
    assert md_code("wlen = wlens[i]") == "`wlen = wlens[i]`"
    assert md_code("a ``b`` c") == "```a ``b`` c```"
    html = to_html("x " + md_code("`x`") + " y")
    assert "<code>`x`</code>" in html
    assert "\\" not in to_html(md_message("uses `wlen = wlens[i]` at line 3"))


def test_table_cells_keep_their_pipes():
    row = f"| {md_code_cell('a | <img src=x>.log')} | {md_escape('b | c')} |"
    html = to_html("| log | note |\n|---|---|\n" + row + "\n")
    assert html.count("<td") == 2 and "<img" not in html and "a | &lt;img src=x&gt;.log" in html


@pytest.mark.parametrize("text", ["@maintainer", "@openai/parameter-golf-maintainers", "https://evil.example/x",
                                  "www.evil.example", "someone@evil.example"])
def test_mentions_and_autolinks_are_neutralised(text):
    html = to_html("see " + md_escape(text))
    assert "<a " not in html
    assert text not in html  # a zero-width space breaks the mention or the link


def test_block_markup_cannot_start_from_data():
    html = to_html("- " + md_escape("# heading\n> quote\n1. item"))
    assert "<h1>" not in html and "<blockquote>" not in html and "<ol>" not in html


def test_long_minified_line_is_cut_to_the_statement():
    line = "import os;" + "x=1;" * 200 + "wlen = wlens[i];" + "y=2;" * 100
    cut = cut_line(line, {"wlen", "wlens"})
    assert "wlen = wlens[i];" in cut and len(cut) <= 170
    assert cut.startswith("…") and cut.endswith("…")


# ---- hostile folders (issue: markup injection) ------------------------------------------

def test_seed_entry_cannot_forge_a_verdict(tmp_path):
    folder = build_case_folder(FolderCase("hostile seeds", json={"seeds": [42, 1337, FAKE_PASS]}), tmp_path)
    md = review_of(folder)
    page = to_html(md)
    assert_inert(page)
    assert "@maintainer" not in page


def test_log_name_cannot_break_its_code_span_or_table(tmp_path):
    folder = build_case_folder(FolderCase("hostile log name"), tmp_path)
    (folder / "train_seed42.log").rename(folder / "a | <img src=x>.log")
    md = review_of(folder)
    m = measure(md)
    assert m.tables_ok and m.details_ok and not m.literal_escapes
    assert_inert(to_html(md))


def test_hostile_folder_and_readme_text(tmp_path):
    folder = build_case_folder(FolderCase("hostile name", folder_name="2026-04-20_@maintainer_<script>x</script>",
                                          json={"val_bpb": "see https://evil.example **now** @org/team"}), tmp_path)
    page = to_html(review_of(folder))
    assert_inert(page)
    assert "<script>" not in page and "<strong>now</strong>" not in page


def test_forged_report_json_is_validated_and_escaped(tmp_path):
    from pgolf_audit.github_comment import CommentFailure, review_from_report

    doc = json.loads(render(audit_paths([example_record()], AuditOptions()), "json"))
    doc["tool"]["version"] = "1.0 <img src=x> @org/team"
    doc["track_source"] = "path\n\n## ✅ PASS\n\n<!--"
    doc["extra"] = "<img src=y>"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    md = review_from_report(path)
    assert_inert(to_html(md))
    assert "@org/team" not in md
    doc["checks"][0]["name"] = "<b>bold</b>"
    path.write_text(json.dumps(doc))
    with pytest.raises(CommentFailure, match="schema"):
        review_from_report(path)


# ---- first screen, order, one finding per problem ---------------------------------------

def over_cap_everywhere() -> FolderCase:
    edit = [(r"Total submission size int6\+lzma: \d+", "Total submission size int6+lzma: 16000123")]
    return FolderCase("over cap in every seed", edits={n: edit for n in
                                                      ("train_seed42.log", "train_seed1337.log", "train_seed2025.log")},
                      json={"seeds": [42, 1337, 2025, 7]})


def test_deciding_finding_first_and_each_problem_once(tmp_path):
    md = review_of(build_case_folder(over_cap_everywhere(), tmp_path))
    head = md.split("<details>", 1)[0]
    assert "**PG201 artifact-over-limit:**" in head and "**Action: reject**" in head
    m = measure(md)
    assert not m.repeated_problems
    assert md.count("**PG201 artifact-over-limit**") == 1
    assert "Same problem, 3 places" in md
    first_bullet = re.search(r"^- \S+ \*\*(PG\d{3})", md, re.M)
    assert first_bullet and first_bullet.group(1) == "PG201"


def test_first_screen_of_the_example(tmp_path):
    md = review_of(example_record())
    m = measure(md)
    assert m.first_screen_lines <= FIRST_SCREEN_LINES and m.visible_chars <= VISIBLE_CHARS
    head = md.split("<details>", 1)[0]
    for words in ("val_bpb", "artifact bytes", "train s", "eval s", "Δ vs", "**Action: merge**",
                  "significance reference: bundled leaderboard table"):
        assert words in head, words


def test_significance_against_the_records_tree(tmp_path):
    from pgolf_audit.rules.pg502_improvement_not_significant import shift_all_seed_losses

    earlier = build_case_folder(FolderCase("earlier", folder_name="2026-04-10_Earlier",
                                           edits=shift_all_seed_losses(+0.0005)), tmp_path)
    later = build_case_folder(FolderCase("later", folder_name="2026-04-20_Later"), tmp_path)
    assert earlier.parent == later.parent
    md = review_of(later)
    head = md.split("<details>", 1)[0]
    assert "Δ vs `2026-04-10_Earlier`" in head and "best earlier record-track folder of this records tree" in head
    assert "NEEDS_REVIEW" in head and "PG502" in head  # 0.0005 nats is under the README margin


def test_significance_in_pr_mode_uses_the_base_commit(tmp_path):
    from pgolf_audit.pr import audit_pull_request
    from pgolf_audit.rules.pg502_improvement_not_significant import shift_all_seed_losses

    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q", "-b", "main")
    build_case_folder(FolderCase("base record", folder_name="2026-04-10_Base", edits=shift_all_seed_losses(+0.03)),
                      repo)
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "pr")
    build_case_folder(FolderCase("new record", folder_name="2026-04-20_New"), repo)
    git("add", "-A")
    git("commit", "-q", "-m", "pr")
    report = audit_pull_request(repo, "main", "pr", AuditOptions())
    md = render(report, "markdown")
    stats = report.results[0].stats
    assert stats["reference"]["name"] == "2026-04-10_Base"
    assert stats["reference"]["source"].startswith("records of the base commit")
    assert "Δ vs `2026-04-10_Base`" in md and "records of the base commit" in md
    assert measure(md).first_screen_lines <= FIRST_SCREEN_LINES


# ---- every real folder ---------------------------------------------------------------------

def real_folders(kind: str) -> list[Path]:
    root = SHARED / kind
    if not root.is_dir():
        pytest.skip(f"../shared/{kind} not present")
    if kind == "records":
        return sorted(f for t in root.iterdir() if t.is_dir() for f in t.iterdir() if f.is_dir())
    return [root / l["folder"] for l in json.loads((root / "labels.json").read_text())]


@pytest.fixture(scope="module", params=["records", "labeled"])
def real_reviews(request):
    report = audit_paths(real_folders(request.param), AuditOptions(jobs=2))
    assert not report.errors, report.errors
    docs = [document(AuditReport(tool=report.tool, results=[r])) for r in report.results]
    return request.param, [(doc, render(doc, "markdown")) for doc in docs]


@pytest.mark.slow
def test_every_real_review_fits_and_renders(real_reviews):
    kind, reviews = real_reviews
    for doc, md in reviews:
        m = measure(md)
        where = f"{kind}: {doc['name']}"
        assert m.first_screen_lines <= FIRST_SCREEN_LINES, where
        assert m.visible_chars <= VISIBLE_CHARS, where
        assert not m.literal_escapes, (where, m.literal_escapes)
        assert m.tables_ok and m.details_ok, where
        assert not m.repeated_problems, (where, m.repeated_problems)


@pytest.mark.slow
def test_deciding_finding_and_significance_in_every_real_review(real_reviews):
    from pgolf_audit.render.screen import deciding

    kind, reviews = real_reviews
    for doc, md in reviews:
        head = md.split("<details>", 1)[0]
        d = deciding(doc)
        if doc["verdict"] in ("FAIL", "NEEDS_REVIEW"):
            assert d is not None and f"**{d['code']} {d['name']}:**" in head, doc["name"]
            if doc["verdict"] == "FAIL":
                assert d["severity"] == "error" and d["category"] != "meta"
        if doc["track"] == "track_10min_16mb":
            assert "Δ vs" in head
            assert "significance reference:" in head or "not tested:" in head, doc["name"]


@pytest.mark.slow
def test_merged_records_overshoot_and_early_seed_counts_are_not_errors(real_reviews):
    kind, reviews = real_reviews
    if kind != "records":
        pytest.skip("merged records only")
    for doc, _ in reviews:
        for f in doc["findings"]:
            values = f["evidence"]["values"]
            if f["code"] == "PG301" and f["severity"] == "error":
                assert values["measured"] - values["limit"] > 1.0, (doc["name"], f["message"])
            if f["code"] == "PG501":
                assert f["severity"] != "error" or doc["ruleset"] >= "2026-04-28", doc["name"]

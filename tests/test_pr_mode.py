"""`pgolf-audit pr` on real git repositories built in temporary directories.

Each repository has a base branch `main` with the challenge's shape (root README.md and
train_gpt.py, one merged record copied from the bundled example) and one branch per PR.
The working tree stays on `main`, so the PR's files are only in git's object store: the audit
must read them from there and leave the working tree untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from pgolf_audit.cli import main as cli_main
from pgolf_audit.context import AuditOptions
from pgolf_audit.git import GitError, parse_name_status
from pgolf_audit.pr import audit_pull_request, read_pull_request

REPORT_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "reports" / "audit.schema.json").read_text())
EXAMPLE = next((Path(__file__).resolve().parents[1] / "auditor" / "example_record" / "records" / "track_10min_16mb").iterdir())
TRACK = "records/track_10min_16mb"
NEW = f"{TRACK}/2026-04-20_NewRecord"
OLD = f"{TRACK}/2026-03-19_Earlier"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Sub Mitter", GIT_AUTHOR_EMAIL="s@example.invalid",
               GIT_COMMITTER_NAME="Sub Mitter", GIT_COMMITTER_EMAIL="s@example.invalid", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_CONFIG_NOSYSTEM="1")
    done = subprocess.run(["git", "-C", str(repo), "-c", "commit.gpgsign=false", *args], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def copy_example(repo: Path, rel: str) -> None:
    shutil.copytree(EXAMPLE, repo / rel)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "parameter-golf"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# Parameter Golf\n\n| leaderboard |\n")
    (root / "train_gpt.py").write_text("print('baseline')\n")
    copy_example(root, OLD)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def make_pr(repo: Path, branch: str, edit) -> None:
    """Commit ``edit(repo)`` on a new branch, then go back to main (the PR stays in objects)."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    edit(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", branch)
    git(repo, "checkout", "-q", "main")


def audit(repo: Path, branch: str, **options):
    return audit_pull_request(repo, "main", branch, AuditOptions(**options))


def codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


def run_cli(*args: str):
    return CliRunner().invoke(cli_main, ["pr", *args])


def test_clean_pr(repo):
    make_pr(repo, "clean", lambda r: copy_example(r, NEW))
    report = audit(repo, "clean")
    pr = report.pr
    assert pr.findings == []
    assert pr.added_folders == [NEW] and pr.audited_folders == [NEW]
    assert pr.shape.endswith("and changes nothing else.")
    assert {c["status"] for c in pr.changes} == {"A"}
    assert [r.path for r in report.results] == [NEW]
    assert report.results[0].track == "track_10min_16mb"
    assert report.verdict.value == "PASS"
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / NEW).exists(), "the PR's files were written into the working tree"
    doc = json.loads(run_cli("--repo", str(repo), "--base", "main", "--head", "clean", "--format", "json").output)
    assert doc["pr"]["verdict"] == "PASS" and doc["pr"]["added_folders"] == [NEW]
    assert doc["results"][0]["path"] == NEW
    jsonschema.validate(doc, REPORT_SCHEMA)


def test_pr_editing_readme(repo):
    def edit(r):
        copy_example(r, NEW)
        (r / "README.md").write_text("# Parameter Golf\n\n| leaderboard |\n| my record |\n")

    make_pr(repo, "readme", edit)
    report = audit(repo, "readme")
    assert codes(report.pr.findings) == ["PG610"]
    assert report.pr.findings[0].location.path == "README.md"
    assert report.verdict.value == "FAIL"
    assert "outside records/ (1 modified)" in report.pr.shape
    result = run_cli("--repo", str(repo), "--base", "main", "--head", "readme", "--format", "text")
    assert result.exit_code == 1, result.output


def test_pr_adding_two_folders(repo):
    second = f"{TRACK}/2026-04-21_SecondIdea"

    def edit(r):
        copy_example(r, NEW)
        copy_example(r, second)

    make_pr(repo, "two", edit)
    report = audit(repo, "two")
    assert codes(report.pr.findings) == ["PG611"]
    assert sorted(r.path for r in report.results) == [NEW, second]
    assert "adds 2 new record folders" in report.pr.shape


def test_pr_deleting_a_record(repo):
    make_pr(repo, "delete", lambda r: git(r, "rm", "-q", "-r", OLD))
    report = audit(repo, "delete")
    assert codes(report.pr.findings) == ["PG613", "PG615"]
    assert report.results == []
    assert "deleted" in report.pr.findings[0].message
    assert all(c["status"] == "D" for c in report.pr.changes)
    result = run_cli("--repo", str(repo), "--base", "main", "--head", "delete", "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == "FAIL"
    jsonschema.validate(doc, REPORT_SCHEMA)


def test_renames_spaces_and_binary_files(repo):
    spaced = f"{TRACK}/2026-04-20_My Record"

    def edit(r):
        copy_example(r, spaced)
        (r / spaced / "final model.pt").write_bytes(bytes(range(256)) * 40)
        (r / spaced / "train_seed42.log").rename(r / spaced / "seed 42.log")
        git(r, "mv", "train_gpt.py", "train_gpt_baseline.py")

    make_pr(repo, "spaces", edit)
    pr, _, _ = read_pull_request(repo, "main", "spaces")
    renamed = [c for c in pr.changes if c.status == "R"]
    assert [(c.old_path, c.path) for c in renamed] == [("train_gpt.py", "train_gpt_baseline.py")]
    assert f"{spaced}/final model.pt" in {c.path for c in pr.changes}
    report = audit(repo, "spaces")
    assert codes(report.pr.findings) == ["PG610", "PG610"]  # the rename touches two root paths
    assert [r.path for r in report.results] == [spaced]
    assert any(f.code == "PG603" for f in report.results[0].findings)  # the folder audit sees the space


def test_wrong_track_nested_and_loose_files(repo):
    def edit(r):
        copy_example(r, "records/track_10min_16MB/2026-04-20_NewRecord")
        (r / TRACK / "notes.md").write_text("loose\n")

    make_pr(repo, "wrong-track", edit)
    report = audit(repo, "wrong-track")
    assert codes(report.pr.findings) == ["PG612", "PG614"]
    assert "did you mean track_10min_16mb?" in report.pr.findings[0].message
    assert [r.path for r in report.results] == ["records/track_10min_16MB/2026-04-20_NewRecord"]

    make_pr(repo, "nested", lambda r: copy_example(r, f"{TRACK}/alice/2026-04-20_NewRecord"))
    report = audit(repo, "nested")
    assert codes(report.pr.findings) == ["PG614"]
    assert [r.path for r in report.results] == [f"{TRACK}/alice/2026-04-20_NewRecord"]


def test_symlinks_are_never_materialised(repo):
    def edit(r):
        copy_example(r, NEW)
        (r / NEW / "helper.py").symlink_to("../../../train_gpt.py")

    make_pr(repo, "symlink", edit)
    report = audit(repo, "symlink")
    assert codes(report.pr.findings) == ["PG616"]
    assert report.pr.not_exported == [{"path": f"{NEW}/helper.py", "reason": "symlink, not exported"}]


def test_merge_base_is_used_not_the_base_tip(repo):
    make_pr(repo, "clean", lambda r: copy_example(r, NEW))
    (repo / "README.md").write_text("# moved on\n")  # main moves on after the PR branched
    git(repo, "commit", "-q", "-am", "main moves on")
    report = audit(repo, "clean")
    assert report.pr.findings == []
    assert report.pr.merge_base != report.pr.base_sha


def test_select_and_ignore_apply_to_pr_rules(repo):
    def edit(r):
        copy_example(r, NEW)
        (r / "README.md").write_text("edited\n")

    make_pr(repo, "readme", edit)
    report = audit(repo, "readme", ignore=["PG610"])
    assert report.pr.findings == []
    skipped = {c.code: c.reason for c in report.pr.checks if c.status.value == "skip"}
    assert "PG610" in skipped


# ---- bad input: exit 2 with a message, never a traceback ----------------------------------------

def test_not_a_git_repository(tmp_path):
    result = run_cli("--repo", str(tmp_path), "--base", "main", "--head", "HEAD")
    assert result.exit_code == 2
    assert "not a git repository" in result.output and "Traceback" not in result.output


def test_unknown_revision(repo):
    result = run_cli("--repo", str(repo), "--base", "main", "--head", "no-such-branch")
    assert result.exit_code == 2 and "unknown revision 'no-such-branch'" in result.output
    result = run_cli("--repo", str(repo), "--base", "--output=/tmp/x", "--head", "main")
    assert result.exit_code == 2


def test_shallow_clone_without_merge_base(repo, tmp_path):
    make_pr(repo, "clean", lambda r: copy_example(r, NEW))
    (repo / "README.md").write_text("# moved on\n")
    git(repo, "commit", "-q", "-am", "main moves on")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "clean", f"file://{repo}", str(shallow))
    git(shallow, "fetch", "-q", "--depth", "1", "origin", "main:main")
    with pytest.raises(GitError, match="shallow clone"):
        read_pull_request(shallow, "main", "clean")
    result = run_cli("--repo", str(shallow), "--base", "main", "--head", "clean")
    assert result.exit_code == 2 and "fetch-depth: 0" in result.output


def test_missing_repo_directory(tmp_path):
    result = run_cli("--repo", str(tmp_path / "nope"), "--base", "main")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_multiple_outputs(repo, tmp_path):
    make_pr(repo, "clean", lambda r: copy_example(r, NEW))
    out_json, out_sarif = tmp_path / "report.json", tmp_path / "report.sarif"
    result = run_cli("--repo", str(repo), "--base", "main", "--head", "clean",
                     "-o", f"json:{out_json}", "-o", f"sarif:{out_sarif}")
    assert result.exit_code == 0, result.output
    assert json.loads(out_json.read_text())["pr"]["head"] == "clean"
    sarif = json.loads(out_sarif.read_text())
    assert sarif["version"] == "2.1.0"
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for res in sarif["runs"][0]["results"]
            for loc in res["locations"]}
    assert uris and all(u.startswith(NEW + "/") for u in uris)


# ---- parsing git's output --------------------------------------------------------------------------

def test_parse_name_status_handles_renames_and_odd_names():
    raw = b"A\0records/a b/README.md\0R087\0old name.py\0new\tname.py\0D\0gone\0M\0caf\xc3\xa9.md\0A\0bad\xff.bin\0"
    changes = parse_name_status(raw)
    assert [(c.status, c.old_path, c.path) for c in changes] == [
        ("A", None, "records/a b/README.md"),
        ("R", "old name.py", "new\tname.py"),
        ("D", None, "gone"),
        ("M", None, "café.md"),
        ("A", None, "bad\\udcff.bin"),
    ]
    with pytest.raises(GitError):
        parse_name_status(b"R100\0only-old\0")


def test_folder_names_are_literal_paths_not_globs(repo, tmp_path):
    from pgolf_audit.git import export_folder, resolve_commit

    starred = f"{TRACK}/2026-0*"  # as a glob it would also match 2026-03-19_Earlier
    make_pr(repo, "glob", lambda r: copy_example(r, starred))
    exported = export_folder(repo, resolve_commit(repo, "glob"), starred, tmp_path / "export")
    assert exported.files == len(list(EXAMPLE.iterdir())) and not exported.skipped
    assert not (tmp_path / "export" / OLD).exists()
    report = audit(repo, "glob")
    assert report.pr.added_folders == [starred]
    assert [r.path for r in report.results] == [starred]


@pytest.mark.parametrize("name", [b"a\\b.log", b"bad\xff.log"])
def test_entries_that_cannot_be_exported_make_the_pr_incomplete(repo, name):
    def edit(r):
        copy_example(r, NEW)
        (r / NEW).joinpath(os.fsdecode(name)).write_text("log that the audit cannot see\n")

    make_pr(repo, "odd-name", edit)
    report = audit(repo, "odd-name")
    assert report.verdict.value == "INCOMPLETE"
    assert any("could not be exported" in e["error"] for e in report.errors)
    assert any(s["reason"].startswith("unsafe path") for s in report.pr.not_exported)
    done = run_cli("--repo", str(repo), "--base", "main", "--head", "odd-name", "--format", "json")
    assert done.exit_code == 2, done.output


def test_crafted_trees_with_long_names_or_duplicate_entries_are_incomplete(repo):
    # git writes such trees only through plumbing; a hostile branch can still carry them
    make_pr(repo, "base-for-crafting", lambda r: copy_example(r, NEW))
    head_tree = git(repo, "rev-parse", "base-for-crafting^{tree}").strip()

    def subtree(tree: str, name: str) -> str:
        line = next(l for l in git(repo, "ls-tree", tree).splitlines() if l.split("\t", 1)[1] == name)
        return line.split()[2]

    def replace(tree: str, name: str, new_id: str) -> str:
        lines = [l for l in git(repo, "ls-tree", tree).splitlines() if l.split("\t", 1)[1] != name]
        lines.append(f"040000 tree {new_id}\t{name}")
        return run_mktree(lines)

    def run_mktree(lines: list[str]) -> str:
        done = subprocess.run(["git", "-C", str(repo), "mktree"], input="\n".join(lines) + "\n", capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()

    records, track, folder_name = NEW.split("/")
    records_tree = subtree(head_tree, records)
    track_tree = subtree(records_tree, track)
    folder_tree = subtree(track_tree, folder_name)
    entries = git(repo, "ls-tree", folder_tree).splitlines()
    readme = next(l for l in entries if l.endswith("\tREADME.md"))
    crafted = entries + [readme.replace("\tREADME.md", "\t" + "L" * 300 + ".log"), readme]  # too long; a duplicate
    new_folder = run_mktree(crafted)
    new_root = replace(head_tree, records, replace(records_tree, track, replace(track_tree, folder_name, new_folder)))
    commit = git(repo, "commit-tree", new_root, "-p", "main", "-m", "crafted").strip()
    git(repo, "branch", "crafted", commit)
    report = audit(repo, "crafted")
    reasons = " ".join(s["reason"] for s in report.pr.not_exported)
    assert "duplicate tree entry" in reasons and "cannot be written" in reasons
    assert report.verdict.value == "INCOMPLETE"

"""action.yml and the example workflows: valid YAML, the security properties they promise,
and the action's audit script run for real (against this checkout's install)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "examples" / "workflows"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_action_metadata():
    action = load(ROOT / "action.yml")
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in ("path", "select", "ignore", "fail-on", "formats", "sarif", "summary", "version", "python-version"):
        assert name in inputs and inputs[name]["description"], name
    assert inputs["formats"]["default"] == "markdown,json"
    assert inputs["summary"]["default"] == "true"
    outputs = action["outputs"]
    for name in ("verdict", "error-count", "warning-count", "report-json", "report-md"):
        assert outputs[name]["value"] == f"${{{{ steps.audit.outputs.{name} }}}}"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], "inputs reach scripts through env, never pasted into shell code"
    install = next(s for s in action["runs"]["steps"] if s.get("name") == "Install pgolf-audit")
    assert install["env"]["PGOLF_ACTION_PATH"] == "${{ github.action_path }}"


def test_no_workflow_pastes_expressions_into_shell():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for step in steps(load(path)):
            if "run" in step:
                assert not EXPRESSION.search(step["run"]), f"{path.name}: {step.get('name')} interpolates into shell"


def test_audit_workflow_is_unprivileged():
    workflow = load(WORKFLOWS / "audit.yml")
    assert "pull_request" in triggers(workflow) and "pull_request_target" not in triggers(workflow)
    assert workflow["permissions"] == {"contents": "read"}
    text = (WORKFLOWS / "audit.yml").read_text()
    assert "secrets." not in text
    upload = next(s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    for name in ("report.json", "review.md", "pr-number"):
        assert name in upload["with"]["path"]
    assert upload["if"] == "always()"
    checkout = next(s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0 and checkout["with"]["persist-credentials"] is False


def test_comment_workflow_never_checks_out_the_pr():
    workflow = load(WORKFLOWS / "audit-comment.yml")
    on = triggers(workflow)
    audit_name = load(WORKFLOWS / "audit.yml")["name"]
    assert on["workflow_run"]["workflows"] == [audit_name] and on["workflow_run"]["types"] == ["completed"]
    assert workflow["permissions"]["pull-requests"] == "write"
    assert "contents" not in workflow["permissions"] or workflow["permissions"]["contents"] == "read"
    for step in steps(workflow):
        assert not str(step.get("uses", "")).startswith("actions/checkout"), "no checkout in the privileged job"
    scripts = "\n".join(s.get("run", "") for s in steps(workflow))
    assert "pgolf-audit comment" in scripts and "--expect-head-sha" in scripts
    assert re.search(r"\^\[1-9\]\[0-9\]", scripts), "the PR number from the artifact is validated as an integer"
    install = next(s for s in steps(workflow) if "pip install" in s.get("run", ""))
    assert "@v" in install["run"], "the tool comes from a pinned release, never from the PR"


def test_rerun_workflow_is_manual_on_a_gpu_runner():
    workflow = load(WORKFLOWS / "rerun.yml")
    on = triggers(workflow)
    assert set(on) == {"workflow_dispatch"}
    assert {"pr", "folder", "nproc"} <= set(on["workflow_dispatch"]["inputs"])
    job = next(iter(workflow["jobs"].values()))
    assert set(job["runs-on"]) == {"self-hosted", "gpu"}
    assert workflow["permissions"] == {"contents": "read"}
    scripts = "\n".join(s.get("run", "") for s in steps(workflow))
    assert re.search(r'pgolf-audit rerun "[^"]+" --nproc "\$NPROC" --format json', scripts)


# ---- the audit step's script, run for real -------------------------------------------------------

def audit_script() -> str:
    action = load(ROOT / "action.yml")
    return next(s for s in action["runs"]["steps"] if s.get("id") == "audit")["run"]


def pgolf_audit_bin() -> str:
    found = Path(sys.executable).with_name("pgolf-audit")
    if found.exists():
        return str(found)
    which = shutil.which("pgolf-audit")
    if which is None:
        pytest.skip("the pgolf-audit entry point is not installed")
    return which


def run_action(tmp_path: Path, cwd: Path, **inputs: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    script = tmp_path / "audit.sh"
    script.write_text(audit_script())
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    output.write_text("")
    summary.write_text("")
    env = dict(os.environ, RUNNER_TEMP=str(tmp_path), GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary),
               PGOLF_BIN=pgolf_audit_bin())
    defaults = {"path": "", "base": "", "head": "HEAD", "select": "", "ignore": "", "ruleset": "", "fail-on": "error",
                "formats": "markdown,json", "sarif": "", "summary": "true", "output-dir": str(tmp_path / "out")}
    defaults.update(inputs)
    for key, value in defaults.items():
        env["PGOLF_" + key.upper().replace("-", "_")] = value
    done = subprocess.run(["bash", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done, outputs, summary.read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_action_audits_a_named_folder(tmp_path):
    from pgolf_audit.bundled import bundled_example

    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Example"
    shutil.copytree(bundled_example(), folder)
    sarif = tmp_path / "sarif" / "pgolf.sarif"
    done, outputs, summary = run_action(tmp_path, tmp_path, path=str(folder), formats="markdown,json,sarif,github",
                                        sarif=str(sarif))
    assert done.returncode == 0, done.stderr + done.stdout
    assert outputs["verdict"] == "PASS" and outputs["error-count"] == "0"
    assert outputs["report-json"].endswith("report.json") and json.loads(Path(outputs["report-json"]).read_text())
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert (tmp_path / "out" / "report.sarif").exists()
    assert "::notice " in done.stdout  # the annotations were printed to the log
    assert summary.startswith("<!-- pgolf-audit:review -->")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_action_detects_the_pr_folder_and_fails_on_a_bad_pr(tmp_path):
    from test_pr_mode import NEW, copy_example, git, make_pr

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# base\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")

    def edit(r):
        copy_example(r, NEW)
        (r / "README.md").write_text("# edited\n")

    make_pr(repo, "bad", edit)
    git(repo, "checkout", "-q", "bad")
    base = git(repo, "rev-parse", "main").strip()
    done, outputs, summary = run_action(tmp_path, repo, base=base)
    assert done.returncode == 1, done.stderr + done.stdout
    assert outputs["verdict"] == "FAIL" and outputs["error-count"] == "1"
    assert "PG610" in summary and "for this pull request" in summary


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("inputs,words", [
    ({"path": "--help"}, "must not start with '-'"),
    ({"path": "x", "select": "PG1;rm -rf /"}, "rule code prefixes"),
    ({"path": "x", "fail-on": "never"}, "fail-on"),
    ({"path": "x", "formats": "markdown,html"}, "unknown format 'html'"),
    ({"path": "", "base": ""}, "no pull request base"),
])
def test_action_rejects_bad_inputs(tmp_path, inputs, words):
    done, outputs, _ = run_action(tmp_path, tmp_path, **inputs)
    assert done.returncode == 2
    assert "::error title=pgolf-audit::" in done.stdout and words in done.stdout
    assert "verdict" not in outputs


# ---- the install step never runs a module from the pull request's checkout -----------------------

def install_step() -> dict:
    action = load(ROOT / "action.yml")
    return next(s for s in action["runs"]["steps"] if s.get("name") == "Install pgolf-audit")


def hostile_checkout(root: Path, marker: Path) -> Path:
    """A checkout whose venv/ and pip/ packages would leave ``marker`` if `python -m` ran them."""
    checkout = root / "checkout"
    for package in ("venv", "pip", "ensurepip"):
        (checkout / package).mkdir(parents=True)
        code = f"open({str(marker)!r}, 'a').write({package!r})\n"
        (checkout / package / "__init__.py").write_text(code)
        (checkout / package / "__main__.py").write_text(code)
    return checkout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_install_step_never_imports_from_the_checkout(tmp_path):
    marker = tmp_path / "pr-code-ran"
    checkout = hostile_checkout(tmp_path, marker)
    step = install_step()
    script = step["run"]
    # run the step up to and including the venv creation (the pip install needs the index)
    head = script[: script.index('python -m venv "$venv"') + len('python -m venv "$venv"')] + " --without-pip\n"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = dict(os.environ, RUNNER_TEMP=str(tmp_path), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               **{k: str(v) for k, v in step["env"].items() if not str(v).startswith("${{")})
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", "-c", head], cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pgolf-audit-venv" / "bin").is_dir()
    assert not marker.exists()
    # the same command from the checkout, without the guards, does run the planted package
    unguarded = dict(env)
    unguarded.pop("PYTHONSAFEPATH")
    subprocess.run(["python", "-m", "venv", str(tmp_path / "other-venv"), "--without-pip"], cwd=checkout,
                   env=unguarded, capture_output=True, text=True, timeout=120)
    assert marker.exists()


def test_workflows_install_from_outside_the_checkout():
    for name in ("audit-comment.yml", "rerun.yml"):
        workflow = load(ROOT / "examples" / "workflows" / name)
        for step in steps(workflow):
            run = step.get("run", "")
            for line in run.splitlines():
                if re.search(r"\bpython3? .*-m\b", line):
                    assert "-P" in line.split() and step.get("working-directory") == "${{ runner.temp }}", line

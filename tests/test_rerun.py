"""``pgolf-audit rerun`` end to end on CPU: real torchrun launches, external measurements checked
against the files and the log, and every kind of bad input ending in a clear finding.

Kept small for a 2-core CI machine: one tiny record (the reference demo's smoke preset, 12
steps), one seed per rerun, short timeouts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from click.testing import CliRunner

from pgolf_audit.audit import audit_folder, audit_paths
from pgolf_audit.bundled import bundled_example
from pgolf_audit.cli import main
from pgolf_audit.context import AuditOptions
from pgolf_audit.parsers.logs import parse_log
from pgolf_audit.render import render
from pgolf_audit.rerun.result import RerunResult
from pgolf_audit.rerun.runner import RerunRequest, run_rerun

FIXTURES = Path(__file__).parent / "fixtures" / "rerun"
SEED = 7
NPROC = 2

pytestmark = pytest.mark.slow


@dataclass
class TinyRecord:
    folder: Path
    data_path: Path
    tokenizer_path: Path
    env: dict[str, str]
    claimed_val_bpb: float


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The reference demo record at its smallest (smoke preset, one seed, trained under
    torchrun with 2 CPU processes): README, submission.json, log, artifact, bundled train_gpt.py."""
    from pgolf_audit.reference_impl.demo import PRESETS, run_demo

    settings = replace(PRESETS["smoke"], seeds=(SEED,))
    demo = run_demo(tmp_path_factory.mktemp("demo"), device="cpu", settings=settings, nproc=NPROC, audit=False,
                    log=lambda _line: None)
    data = demo.data_dir / "datasets" / f"demo_sp{settings.vocab_size}"
    tokenizer = demo.data_dir / "tokenizers" / f"demo_sp{settings.vocab_size}_bpe.model"
    assert data.is_dir() and tokenizer.is_file()
    env = settings.trainer_env() | {"OMP_NUM_THREADS": "1"}
    return TinyRecord(demo.record_dir, data, tokenizer, env, demo.runs[0].val_bpb)


@pytest.fixture(scope="module")
def tiny_rerun(tiny, tmp_path_factory):
    """The demo record rerun with nothing typed by hand: its configuration comes from its README
    (a per-seed loop of variable assignments, data paths relative to the folder), the timeout is
    derived from its claims."""
    out = tmp_path_factory.mktemp("tiny_rerun")
    args = ["rerun", str(tiny.folder), "--nproc", str(NPROC), "--device", "cpu", "--out", str(out), "--keep-scratch",
            "--format", "json"]
    result = CliRunner().invoke(main, args)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None, out


def test_rerun_reproduces_the_tiny_record(tiny, tiny_rerun):
    result, doc, _ = tiny_rerun
    assert doc is not None, result.output[-3000:]
    assert result.exit_code == 0, [(f["code"], f["message"]) for f in doc["findings"]]
    assert doc["verdict"] in ("PASS", "NEEDS_REVIEW")
    rerun = doc["rerun"]
    assert rerun["command"] == "torchrun --standalone --nproc_per_node=2 train_gpt.py"
    assert rerun["seeds"] == [SEED] and rerun["infrastructure_error"] is None
    run = rerun["runs"][0]
    assert run["status"] == "ok" and run["exit_code"] == 0 and run["problems"] == []
    assert run["claimed_val_bpb"] == pytest.approx(tiny.claimed_val_bpb)
    assert abs(run["val_bpb"] - tiny.claimed_val_bpb) < 1e-4
    assert run["within_claimed_spread"] is True and rerun["summary"]["within_claimed_spread"] is True
    assert rerun["isolation"]["method"] in ("network-namespace", "socket-guard")
    assert run["network_attempts"] == [] and run["leftover_processes"] == 0
    # the shipped artifact was not copied into the scratch folder
    assert f"final_model_seed{SEED}.int8.ptz" in run["excluded_from_copy"]
    codes = {f["code"] for f in doc["findings"]}
    assert not codes & {"PG801", "PG802", "PG803"}
    assert "PG804" in codes  # CPU is not the 8xH100 target: timings provisional
    # the configuration is the README's, and the printed hyperparameters are the claimed log's
    config = rerun["config"]["seeds"][str(SEED)]
    assert config["env"]["MODEL_DIM"] == tiny.env["MODEL_DIM"] and config["env"]["ITERATIONS"] == tiny.env["ITERATIONS"]
    assert config["env"]["DATA_PATH"] == str(tiny.data_path)  # README path resolved from the original folder
    assert config["env"]["ARTIFACT_PATH"] == f"final_model_seed{SEED}.int8.ptz"  # $SEED expanded
    assert config["sources"]["MODEL_DIM"].startswith("README line ")
    assert rerun["config"]["overrides"] == {}
    diff = run["config_diff"]
    assert diff["status"] == "same" and diff["unrequested"] == [] and diff["same"] >= 30, diff
    assert "PG805" not in codes
    # the default timeout is derived from the claims and printed
    assert rerun["timeout"]["source"] == "derived" and rerun["timeout_seconds"] == rerun["timeout"]["seconds"]
    assert rerun["timeout"]["seconds"] >= 120 and "claimed" in rerun["timeout"]["formula"]


def test_external_measurements_agree_with_files_and_log(tiny, tiny_rerun):
    _, doc, out = tiny_rerun
    run = doc["rerun"]["runs"][0]
    console = Path(run["log_path"])
    assert console.is_file() and console.parent == out / f"seed{SEED}"
    log = parse_log(console.read_bytes(), "console.log")
    record = log.runs[-1]
    # bytes: the artifact on disk is what the log says, plus the counted code bytes
    artifact = out / "scratch" / f"seed{SEED}" / run["artifact_path"]
    assert artifact.is_file()
    assert run["artifact_file_bytes"] == artifact.stat().st_size == record.model_bytes
    assert run["code_bytes"] == (tiny.folder / "train_gpt.py").stat().st_size == record.code_bytes
    assert run["artifact_bytes"] == run["artifact_file_bytes"] + run["code_bytes"] == record.total_bytes
    assert run["reported_artifact_bytes"] == record.total_bytes
    # times: the outside view contains the script's own timer and is ordered
    assert run["reported_train_seconds"] == pytest.approx(record.train_time_ms / 1000, abs=1e-3)
    assert run["train_seconds"] >= run["reported_train_seconds"]
    assert run["train_loop_seconds"] >= run["reported_train_seconds"] - 0.05
    assert 0 < run["startup_seconds"] <= run["train_seconds"] <= run["artifact_seconds"] + 1e-3
    assert run["artifact_seconds"] <= run["final_metric_seconds"] <= run["wall_seconds"]
    assert run["eval_seconds"] == pytest.approx(run["final_metric_seconds"] - run["artifact_seconds"], abs=2e-3)
    # timestamps: one per line, monotonic, same text as the plain log
    plain = console.read_text(encoding="utf-8").splitlines()
    timed = Path(run["timed_log_path"]).read_text(encoding="utf-8").splitlines()
    assert len(plain) == len(timed) == run["lines"] > 10
    stamps = [float(line[:10]) for line in timed]
    assert stamps == sorted(stamps) and stamps[0] >= 0 and stamps[-1] <= run["wall_seconds"]
    assert [line[11:] for line in timed] == plain
    assert any(line.startswith("final_int8_zstd_roundtrip_exact") for line in plain)
    # the script's own log file was kept too, and the seed's measurements
    assert any(Path(p).name == f"train_seed{SEED}.txt" for p in run["script_logs"])  # the README's RUN_ID
    assert json.loads((out / f"seed{SEED}" / "measurements.json").read_text())["val_bpb"] == run["val_bpb"]
    assert json.loads((out / "rerun.json").read_text())["runs"][0]["seed"] == SEED


def test_rerun_section_matches_its_schema(tiny_rerun):
    jsonschema = pytest.importorskip("jsonschema")
    from pgolf_audit.rerun.schema import RERUN_SCHEMA

    jsonschema.validate(tiny_rerun[1]["rerun"], RERUN_SCHEMA)


def test_markdown_review_has_the_reproduction_table(tiny, tiny_rerun):
    _, doc, out = tiny_rerun
    report = audit_paths([tiny.folder], AuditOptions(rerun_result=RerunResult.from_json(doc["rerun"])))
    text = render(report, "markdown")
    assert "#### Reproduction" in text
    assert f"| {SEED} | 0 |" in text
    assert "Configuration run" in text and "MODEL_DIM=" in text and "Overrides asked for: none" in text
    assert f"Seed {SEED} hyperparameters vs the claimed log: ✅ same" in text
    assert "| seed | startup s | compile + warm-up s |" in text and "Per-seed timeout:" in text
    assert "timings provisional" in text and str(out) in text
    assert "the Reproduction section ran it" in text  # the footer never claims nothing ran
    assert (out / "report.json").is_file()  # the CLI also leaves its report beside the logs


# ---- bad input ------------------------------------------------------------------------------


def rerun_fixture(name: str, tmp_path: Path, *, timeout: float = 60, nproc: int = 1, env=None, isolation="auto"):
    out = tmp_path / "out"
    rerun = run_rerun(RerunRequest(folder=FIXTURES / name, nproc=nproc, device="cpu", seeds=[1], timeout_s=timeout,
                                   out_dir=out, env=dict(env or {}), isolation=isolation))
    result = audit_folder(FIXTURES / name, AuditOptions(select=["PG8"], rerun_result=rerun))
    return rerun, rerun.runs[0] if rerun.runs else None, [f for f in result.findings if f.code == "PG801"]


def test_crash_is_reported_with_the_log_tail(tmp_path):
    rerun, run, findings = rerun_fixture("crash", tmp_path)
    assert run["status"] == "crashed" and run["exit_code"] not in (0, None)
    assert {"crashed", "no_metric", "no_artifact"} <= set(run["problems"])
    assert findings and findings[0].severity.value == "error"
    assert "exit code" in findings[0].message and "boom" in findings[0].evidence.excerpt


def _processes_with(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def test_hang_is_killed_with_its_whole_process_tree(tmp_path):
    token = f"pgolf-hang-{os.getpid()}-{time.monotonic_ns()}"
    started = time.monotonic()
    rerun, run, findings = rerun_fixture("hang", tmp_path, timeout=15, nproc=2,
                                         env={"PGOLF_HANG_FIXTURE_TOKEN": token})
    assert time.monotonic() - started < 60
    assert run["status"] == "timeout" and run["timed_out"] is True
    # torchrun, two workers (each in a session of its own) and two daemons at least
    assert run["processes_ended_on_timeout"] >= 4
    assert _processes_with(token) == [], "a process of the hung run survived"
    assert findings and "timeout" in findings[0].message and "step:1/1000" in findings[0].message


def test_daemon_holding_the_output_is_ended(tmp_path):
    started = time.monotonic()
    _, run, findings = rerun_fixture("daemon", tmp_path)
    assert time.monotonic() - started < 45
    assert run["exit_code"] == 0 and run["status"] == "ok" and run["val_bpb"] == pytest.approx(1.2)
    assert run["leftover_processes"] >= 1 and run["surviving_processes"] == []
    assert any(f.severity.value == "warning" and "still running" in f.message for f in findings)


def test_output_flood_is_cut_and_reported(tmp_path, monkeypatch):
    from pgolf_audit.rerun import harness

    monkeypatch.setattr(harness, "MAX_OUTPUT_BYTES", 20_000)
    _, run, findings = rerun_fixture("flood", tmp_path)
    assert run["exit_code"] == 0 and run["output_lines_dropped"] > 55_000
    assert Path(run["log_path"]).stat().st_size <= 20_000
    assert any("dropped" in f.message for f in findings)


def test_silent_script_is_reported(tmp_path):
    _, run, findings = rerun_fixture("silent", tmp_path)
    assert run["exit_code"] == 0 and run["status"] == "no_output" and run["script_lines"] == 0
    assert findings and "printed nothing" in findings[0].message


def test_missing_artifact_is_reported(tmp_path):
    _, run, findings = rerun_fixture("no_artifact", tmp_path)
    assert run["status"] == "no_artifact" and run["val_bpb"] == pytest.approx(1.2)
    assert run["artifact_path"] is None and run["artifact_bytes"] is None
    assert any("no artifact" in f.message for f in findings)


def test_network_attempt_is_refused_and_reported(tmp_path):
    # the socket-layer guard alone (the weaker layer) must refuse and record; with a namespace
    # the same guard records the attempts (test_rerun_reproduces_the_tiny_record runs in "auto")
    rerun, run, findings = rerun_fixture("network", tmp_path, isolation="guard")
    assert run["exit_code"] == 0 and run["status"] == "network_attempt"
    targets = {a["target"] for a in run["network_attempts"]}
    assert "192.0.2.1:80" in targets and "example.com" in targets
    assert all(a["where"].startswith("train_gpt.py:") for a in run["network_attempts"])
    assert "refused" in run["log_tail"] or "blocked" in run["log_tail"]
    messages = " ".join(f.message for f in findings)
    assert "192.0.2.1:80" in messages and "refused" in messages
    assert rerun.isolation["method"] == "socket-guard"


def test_fa3_record_runs_through_the_shim(tiny, tmp_path):
    env = {"VOCAB_SIZE": tiny.env["VOCAB_SIZE"], "NUM_LAYERS": "1", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
           "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "512", "ITERATIONS": "4", "WARMUP_STEPS": "0",
           "TRAIN_LOG_EVERY": "1", "OMP_NUM_THREADS": "1", "VARLEN": "1"}
    rerun = run_rerun(RerunRequest(folder=FIXTURES / "fa3_record", nproc=1, device="cpu", seeds=[3], timeout_s=90,
                                   out_dir=tmp_path / "out", env=env, data_path=str(tiny.data_path),
                                   tokenizer_path=str(tiny.tokenizer_path), shim_flash_attn=True))
    run = rerun.runs[0]
    assert rerun.shim["flash_attn"] and rerun.shim["usage"]["imports_flash_attn_interface"]
    assert run["status"] == "ok", run["log_tail"]
    assert run["artifact_bytes"] == run["reported_artifact_bytes"]
    assert "flash_attn_varlen_func" in Path(run["log_path"]).read_text()


# ---- calibration and infrastructure --------------------------------------------------------


def test_calibration_measures_speed_and_factor(tmp_path):
    from dataclasses import replace

    from pgolf_audit.rerun.calibrate import run_calibration
    from pgolf_audit.rerun.isolation import prepare_isolation
    from pgolf_audit.rerun.speed_reference import PROFILES, SpeedReference

    profile = replace(PROFILES["tiny-cpu"], reference=SpeedReference(2.0, "test", "test", "test"))
    isolation = prepare_isolation(tmp_path, sys.executable, "guard")
    result = run_calibration(device="cpu", nproc=1, python=sys.executable, out_dir=tmp_path, isolation=isolation,
                             steps=3, profile=profile, timeout_s=90)
    assert result["status"] == "ok", result.get("log_tail")
    assert result["ms_per_step"] > 0 and result["external_ms_per_step"] > 0
    assert result["speed_factor"] == pytest.approx(result["ms_per_step"] / 2.0, rel=1e-2)


def test_infrastructure_failure_is_incomplete(tmp_path):
    # the bundled example record passes the static audit, so only the rerun decides the verdict
    result = CliRunner().invoke(main, ["rerun", str(bundled_example()), "--nproc", "1", "--device", "cpu",
                                       "--python", str(tmp_path / "no-such-python"), "--out", str(tmp_path / "o"),
                                       "--format", "json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "INCOMPLETE"
    assert "could not run" in doc["rerun"]["infrastructure_error"]
    assert doc["rerun"]["runs"] == []


@pytest.mark.parametrize("args, message", [
    (["--nproc", "1", "--seeds", "4x"], "not an integer seed"),
    (["--nproc", "1", "--env", "SEED=3"], "cannot set SEED"),
    (["--nproc", "1", "--env", "NOEQUALS"], "NAME=VALUE"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["rerun", str(FIXTURES / "crash"), "--device", "cpu", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output


def test_missing_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["rerun", str(tmp_path / "nope"), "--nproc", "1", "--device", "cpu"])
    assert result.exit_code == 2 and "not a directory" in result.output

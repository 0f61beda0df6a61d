"""``pgolf-audit rerun`` runs the claimed configuration: README launch commands, hyperparameter
dumps and their comparison, --data-root, the artifact among the files a run writes, the phases
and the derived timeout. Pure pieces first; then real torchrun launches on CPU (the demo record
with a deliberately different configuration, and a run that stops before its artifact)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pgolf_audit.rerun.config import (ConfigError, build_config, missing_data_paths, requested_hyperparameters,
                                      script_variables)
from pgolf_audit.rerun.harness import WatchedFile, _choose_artifact, _phases
from pgolf_audit.rerun.hparams import diff_hyperparameters, is_warmup_line, parse_hyperparameters
from pgolf_audit.rerun.readme_command import launch_commands, launch_for_seed
from pgolf_audit.rerun.runner import derive_timeout

FIXTURES = Path(__file__).parent / "fixtures" / "rerun"
SHARED_RECORDS = Path(__file__).resolve().parents[2] / "shared" / "records"

LOOP_README = """# A record

Run it:

```bash
export OMP_NUM_THREADS=1
TOKENS=../data/tokenizers
for SEED in 1 22 333; do
  DATA_PATH=../data/datasets/x SEED=$SEED RUN_ID=run_${SEED} \\
  TOKENIZER_PATH=$TOKENS/x.model ARTIFACT_PATH=model_seed$SEED.int8.ptz \\
  torchrun --standalone --nproc_per_node=8 train_gpt.py
done
pip install brotli   # not a launch
```
"""


# ---- README launch commands -------------------------------------------------------------------


def test_readme_loop_exports_prefixes_and_variables():
    launches = launch_commands(LOOP_README)
    assert [launch.seed for launch in launches] == [1, 22, 333]
    env = launches[1].env
    assert env["OMP_NUM_THREADS"] == "1"                      # export before the loop
    assert env["RUN_ID"] == "run_22" and env["ARTIFACT_PATH"] == "model_seed22.int8.ptz"
    assert env["TOKENIZER_PATH"] == "../data/tokenizers/x.model"  # a shell variable, expanded
    assert "TOKENS" not in env                               # not exported: not the child's
    assert launches[0].nproc == 8 and launches[0].line == 9 and launches[0].unexpanded == []


def test_readme_single_command_serves_every_seed_and_seed_specific_ones_win():
    text = ("```\nSEED=42 QK_GAIN_INIT=5.25 TTT_ENABLED=1 \\\n  torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
            "Seed 7 used `SEED=7 QK_GAIN_INIT=4 python3 train_gpt.py`.\n")
    launches = launch_commands(text)
    assert [(launch.seed, launch.env["QK_GAIN_INIT"]) for launch in launches] == [(42, "5.25"), (7, "4")]
    chosen, how = launch_for_seed(launches, 7)
    assert chosen.env["QK_GAIN_INIT"] == "4" and "SEED=7" in how
    chosen, how = launch_for_seed(launches, 314)
    assert chosen.env["QK_GAIN_INIT"] == "5.25"               # the one on the 8-GPU target
    assert "the harness sets SEED=314" in how
    assert launch_for_seed([], 1) == (None, "the README has no launch command of the script")
    assert launch_commands("```\npython3 data/cached_challenge_fineweb.py --variant sp8192\n```") == []
    assert launch_commands("```\nSEED='unbalanced torchrun train_gpt.py\n```") == []


# ---- hyperparameter dumps and their comparison ------------------------------------------------


BLOCK_LOG = """Hyperparameters:
  data_dir: ./data/
  qk_gain_init: 5.25
  ttt_enabled: True
  run_id: abc
  world_size: 8
  grad_accum_steps: 1
  max_wallclock_seconds: 600.0
train_shards: 128
warmup_step: 1/20
  ttt_lr: 0.5
"""

BASELINE_LOG = """import os
x = dict(a=1)
    data_path=os.environ.get("DATA_PATH"),
        self.num_heads,
====================================================================================================
val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=/root/data/tokenizers/fineweb_1024_bpe.model
val_loader:shards pattern=/root/x/fineweb_val_*.bin tokens:63779840
world_size:8 grad_accum_steps:1
train_batch_tokens:524288 train_seq_len:1024 iterations:20000 max_wallclock_seconds:600.000
seed:1337
step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.02ms
warmup_steps:99
"""


def test_hyperparameters_from_both_dialects_and_never_from_code():
    block = parse_hyperparameters(BLOCK_LOG)
    assert block == {"data_dir": "./data/", "qk_gain_init": "5.25", "ttt_enabled": "True", "run_id": "abc",
                     "world_size": "8", "grad_accum_steps": "1", "max_wallclock_seconds": "600.0"}
    baseline = parse_hyperparameters(BASELINE_LOG)
    # measurement lines (val_bpb:enabled ..., val_loader:... tokens:N) are skipped whole
    assert baseline == {"world_size": "8", "grad_accum_steps": "1", "train_batch_tokens": "524288",
                        "train_seq_len": "1024", "iterations": "20000", "max_wallclock_seconds": "600.000",
                        "seed": "1337"}
    assert is_warmup_line("warmup_step: 3/20") and is_warmup_line("loop_warmup:enabled encoder:[0, 1]")
    assert not is_warmup_line("  warmup_steps: 20") and not is_warmup_line("warmup_steps:20 x:1")


def test_diff_sorts_each_difference_by_its_cause():
    claimed = parse_hyperparameters(BLOCK_LOG) | {"datasets_dir": "./data/datasets/fineweb10B_sp8192",
                                                  "tokenizer_path": "./data/tokenizers/t.model", "only_claimed": "1"}
    rerun = {"data_dir": "/d", "qk_gain_init": "5.0", "ttt_enabled": "1", "run_id": "zzz", "world_size": "1",
             "grad_accum_steps": "8", "max_wallclock_seconds": "45", "datasets_dir": "/d/datasets/fineweb10B_sp8192",
             "tokenizer_path": "/elsewhere/tokenizers/t.model", "only_rerun": "x"}
    diff = diff_hyperparameters(claimed, rerun, requested={"data_dir": "DATA_DIR from --data-root",
                                                           "max_wallclock_seconds": "--env MAX_WALLCLOCK_SECONDS"},
                                requested_paths=["/d"], topology_changed=True)
    kinds = {kind: sorted(d["name"] for d in diff[kind]) for kind in ("requested", "explained", "unrequested")}
    assert kinds == {"requested": ["data_dir", "datasets_dir", "max_wallclock_seconds"],
                     "explained": ["grad_accum_steps", "run_id", "tokenizer_path", "world_size"],
                     "unrequested": ["only_claimed", "only_rerun", "qk_gain_init"]}
    assert diff["same"] == 1  # ttt_enabled: True and 1 are the same setting
    same_topology = diff_hyperparameters({"world_size": "8"}, {"world_size": "1"}, requested={}, requested_paths=[],
                                         topology_changed=False)
    assert [d["name"] for d in same_topology["unrequested"]] == ["world_size"]


def test_real_record_dump_is_read_when_the_records_are_present():
    log = SHARED_RECORDS / "track_10min_16mb" / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT" / "train_seed42.log"
    if not log.is_file():
        pytest.skip("shared records not present")
    values = parse_hyperparameters(log.read_text(encoding="utf-8", errors="replace"))
    assert values["qk_gain_init"] == "5.25" and values["ttt_enabled"] == "True" and values["seed"] == "42"
    assert len(values) > 60


# ---- configuration: README paths, --data-root, overrides ---------------------------------------


@pytest.fixture()
def layout(tmp_path):
    """records/track/rec (the folder) beside data/ (a challenge-style data folder)."""
    folder = tmp_path / "records" / "track" / "rec"
    folder.mkdir(parents=True)
    data = tmp_path / "data"
    (data / "datasets" / "fineweb10B_sp1024").mkdir(parents=True)
    (data / "tokenizers").mkdir()
    (data / "tokenizers" / "fineweb_1024_bpe.model").write_bytes(b"x")
    (folder / "tokenizer_here.model").write_bytes(b"x")
    return folder, data


SCRIPT = ('import os\nclass H:\n    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")\n'
          '    tokenizer_path = os.environ.get(\'TOKENIZER_PATH\', "./data/tokenizers/fineweb_1024_bpe.model")\n'
          '    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))\n'
          '    seed = int(os.getenv("SEED", 1337))\n')


def test_readme_relative_data_paths_resolve_from_the_original_folder(layout):
    folder, data = layout
    readme = ("```\nDATA_PATH=../../../data/datasets/fineweb10B_sp1024 TOKENIZER_PATH=./tokenizer_here.model "
              "LOG=logs/x.txt DEVICE=cuda SEED=3 torchrun --nproc_per_node=8 train_gpt.py\n```\n")
    config = build_config(folder, readme, SCRIPT, [3, 4])
    env = config.seeds[3].env
    assert env["DATA_PATH"] == str(data / "datasets" / "fineweb10B_sp1024")   # outside the folder: absolute
    assert env["TOKENIZER_PATH"] == "./tokenizer_here.model"                  # inside: the copy has it
    assert env["LOG"] == "logs/x.txt"                                         # an output path: untouched
    assert "SEED" not in env and "DEVICE" not in env and config.seeds[3].dropped == {"SEED": "3", "DEVICE": "cuda"}
    assert config.seeds[4].env == env and config.overrides == {}


def test_data_root_maps_the_variables_the_script_reads(layout):
    folder, data = layout
    assert script_variables(SCRIPT) == {"DATA_PATH": "./data/datasets/fineweb10B_sp1024",
                                        "TOKENIZER_PATH": "./data/tokenizers/fineweb_1024_bpe.model",
                                        "MAX_WALLCLOCK_SECONDS": None, "SEED": None}
    config = build_config(folder, None, SCRIPT, [1], data_root=data, env={"MAX_WALLCLOCK_SECONDS": "45"})
    assert config.data_mapping == {"DATA_PATH": str(data / "datasets" / "fineweb10B_sp1024"),
                                   "TOKENIZER_PATH": str(data / "tokenizers" / "fineweb_1024_bpe.model")}
    assert config.seeds[1].env["MAX_WALLCLOCK_SECONDS"] == "45" and config.seeds[1].sources["DATA_PATH"] == "--data-root"
    requested = requested_hyperparameters(config, SCRIPT)
    assert requested["max_wallclock_seconds"] == "--env MAX_WALLCLOCK_SECONDS"
    assert requested["data_path"] == "DATA_PATH from --data-root"
    # a folder-valued DATA_DIR (the SP8192 scripts) is the data root itself
    dir_script = "import os\ndata_dir = os.environ.get('DATA_DIR', './data/')\n"
    assert build_config(folder, None, dir_script, [1], data_root=data).data_mapping == {"DATA_DIR": str(data)}


def test_absolute_readme_data_paths_missing_here_are_named(layout):
    folder, data = layout
    readme = ("```\nDATA_PATH=/root/code/parameter-golf/data/datasets/fineweb10B_sp1024 RUN_ID=x "
              "TOKENIZER_PATH=/root/code/parameter-golf/data/tokenizers/fineweb_1024_bpe.model "
              "torchrun --standalone --nproc_per_node=8 /root/code/parameter-golf/train_gpt.py\n```\n")
    config = build_config(folder, readme, SCRIPT, [1337])
    assert missing_data_paths(config) == {
        "DATA_PATH": "/root/code/parameter-golf/data/datasets/fineweb10B_sp1024",
        "TOKENIZER_PATH": "/root/code/parameter-golf/data/tokenizers/fineweb_1024_bpe.model"}
    assert missing_data_paths(build_config(folder, readme, SCRIPT, [1337], data_root=data)) == {}


def test_data_root_errors_are_clear(layout, tmp_path):
    folder, data = layout
    with pytest.raises(ConfigError, match="not a directory"):
        build_config(folder, None, SCRIPT, [1], data_root=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="neither datasets/ nor tokenizers/"):
        build_config(folder, None, SCRIPT, [1], data_root=empty)
    shutil.rmtree(data / "datasets" / "fineweb10B_sp1024")
    with pytest.raises(ConfigError, match=r"fineweb10B_sp1024 \(from .*\), which does not exist"):
        build_config(folder, None, SCRIPT, [1], data_root=data)
    with pytest.raises(ConfigError, match="reads none of the data variables"):
        build_config(folder, None, "print('no data')\n", [1], data_root=data)


def test_default_timeout_is_derived_and_explained(layout):
    folder, _ = layout
    claims = {"hardware": "8xH100 80GB SXM", "seeds": {"1": {"train_seconds": 590.0, "eval_seconds": 300.0},
                                                       "2": {"train_seconds": 595.0, "eval_seconds": 310.0}}}
    config = build_config(folder, None, SCRIPT, [1], env={"MAX_WALLCLOCK_SECONDS": "60"})
    one_gpu = derive_timeout(claims, config, "cuda", 1, None)
    assert one_gpu["seconds"] == 600 + 60 + 310 * 8 and "capped by MAX_WALLCLOCK_SECONDS=60" in one_gpu["formula"]
    calibrated = derive_timeout(claims, build_config(folder, None, SCRIPT, [1]), "cuda", 8, {"speed_factor": 1.5})
    assert calibrated["seconds"] == pytest.approx(600 + 595 * 1.5 + 310 * 1.5)
    unknown = derive_timeout({"seeds": {}}, config, "cpu", 2, None)
    assert unknown["seconds"] == 120 + 60 + 600 and "limits stand in" in unknown["formula"]


# ---- artifact and phases ------------------------------------------------------------------------


def _watched(rel: str, size: int, at: float) -> WatchedFile:
    return WatchedFile(rel, size, 0, at, at - 0.25, at, at, at - 0.25, at)


class _Record:
    def __init__(self, models=(), totals=()):
        from pgolf_audit.parsers.logs import SizeLine

        self.model_sizes = [SizeLine(b, label, 1, "model") for b, label in models]
        self.total_sizes = [SizeLine(b, label, 1, "total") for b, label in totals]


def test_raw_checkpoint_is_never_the_artifact():
    checkpoint = _watched("final_model.pt", 135_431_033, 10.0)
    assert _choose_artifact([checkpoint], _Record(models=[(135_431_033, None)]), 16_000) is None
    compressed = _watched("final_model.int6.ptz", 15_975_300, 20.0)
    odd_name = _watched("weights.bin", 15_975_300, 21.0)
    record = _Record(models=[(135_431_033, None), (15_975_300, "quantized+brotli")])
    assert _choose_artifact([checkpoint, compressed], record, 16_000) is compressed
    assert _choose_artifact([checkpoint, odd_name], record, 16_000) is odd_name          # by its size line
    assert _choose_artifact([checkpoint, odd_name], _Record(totals=[(15_991_300, "int8+zlib")]), 16_000) is odd_name
    named = _watched("model_seed1.bin", 9_000, 5.0)
    assert _choose_artifact([checkpoint, named], None, None, ("out/model_seed1.bin",)) is named


def test_phases_split_startup_compile_training_quantization():
    lines = ["W1203 12:00:00.000000 1 torch/distributed/run.py:1] banner", "model_params:100", "warmup_step: 1/2",
             "warmup_step: 2/2", "0/10 val_loss: 9.0 val_bpb: 3.0", "stopping_early: wallclock_cap"]
    stamps = [0.5, 4.0, 30.0, 31.0, 32.0, 50.0]
    phases = _phases(lines, stamps, first_training=32.0, train_end=50.0, artifact_at=58.0, final_at=70.0)
    assert phases == {"startup_seconds": 4.0, "compile_warmup_seconds": 28.0, "warmup_lines": 2,
                      "quantization_seconds": 8.0}
    no_warmup = _phases(lines[:2] + lines[4:], [0.5, 4.0, 32.0, 50.0], 32.0, 50.0, None, None)
    assert no_warmup["startup_seconds"] == 32.0 and no_warmup["compile_warmup_seconds"] is None


# ---- real launches on CPU -------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from pgolf_audit.reference_impl.demo import PRESETS, run_demo

    settings = replace(PRESETS["smoke"], seeds=(5,))
    return run_demo(tmp_path_factory.mktemp("demo"), device="cpu", settings=settings, nproc=1, audit=False,
                    log=lambda _line: None)


def _rerun_cli(folder: Path, out: Path, *args: str) -> dict:
    from click.testing import CliRunner

    from pgolf_audit.cli import main

    result = CliRunner().invoke(main, ["rerun", str(folder), "--nproc", "1", "--device", "cpu", "--out", str(out),
                                       "--format", "json", *args])
    assert result.stdout.strip().startswith("{"), result.output[-3000:]
    return json.loads(result.stdout)


def _moved_copy(demo, tmp_path: Path) -> Path:
    """The demo record elsewhere: its README's relative data paths no longer lead anywhere."""
    folder = tmp_path / "moved" / demo.record_dir.name
    shutil.copytree(demo.record_dir, folder)
    return folder


@pytest.mark.slow
def test_data_root_alone_reproduces_the_claim(demo, tmp_path):
    doc = _rerun_cli(_moved_copy(demo, tmp_path), tmp_path / "out", "--data-root", str(demo.data_dir))
    run = doc["rerun"]["runs"][0]
    assert run["status"] == "ok", run.get("log_tail")
    assert run["val_bpb"] == pytest.approx(demo.runs[0].val_bpb, abs=1e-6) and run["within_claimed_spread"] is True
    assert run["config_diff"]["status"] == "same" and run["config_diff"]["unrequested"] == []
    assert doc["rerun"]["summary"]["comparable"]["claimed_configuration"] is True
    assert not [f for f in doc["findings"] if f["code"] in ("PG801", "PG802", "PG803") or
                (f["code"] == "PG805" and f["severity"] != "info")]


@pytest.mark.slow
def test_env_override_is_listed_and_the_comparison_marked(demo, tmp_path):
    doc = _rerun_cli(_moved_copy(demo, tmp_path), tmp_path / "out", "--data-root", str(demo.data_dir),
                     "--env", "ITERATIONS=8")
    rerun = doc["rerun"]
    run = rerun["runs"][0]
    assert run["status"] == "ok", run.get("log_tail")
    overrides = rerun["config"]["overrides"]
    assert overrides["ITERATIONS"]["value"] == "8" and overrides["ITERATIONS"]["readme"] == "12"
    assert {overrides["DATA_PATH"]["source"], overrides["TOKENIZER_PATH"]["source"]} == {"--data-root"}
    diff = run["config_diff"]
    assert diff["status"] == "same" and diff["unrequested"] == []
    assert [(d["name"], d["claimed"], d["rerun"]) for d in diff["requested"] if d["name"] == "iterations"] == [
        ("iterations", "12", "8")]
    assert run["steps"] == 8
    comparable = rerun["summary"]["comparable"]
    assert comparable["claimed_configuration"] is False and comparable["val_bpb"] is False
    assert any("overridden on request: ITERATIONS" in reason for reason in comparable["reasons"])
    findings = [f for f in doc["findings"] if f["code"] == "PG805"]
    assert len(findings) == 1 and findings[0]["severity"] == "info"
    assert "iterations 12 -> 8" in findings[0]["message"] and "--env ITERATIONS" in findings[0]["message"]


@pytest.mark.slow
def test_configuration_the_readme_loses_is_reported(demo, tmp_path):
    folder = tmp_path / "records" / "track_non_record_16mb" / demo.record_dir.name
    shutil.copytree(demo.record_dir, folder)
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert " MODEL_DIM=32 " in readme
    (folder / "README.md").write_text(readme.replace(" MODEL_DIM=32 ", " "), encoding="utf-8")
    doc = _rerun_cli(folder, tmp_path / "out", "--data-root", str(demo.data_dir))
    run = doc["rerun"]["runs"][0]
    assert run["status"] == "ok", run.get("log_tail")
    diff = run["config_diff"]
    assert diff["status"] == "differs"
    assert [(d["name"], d["claimed"]) for d in diff["unrequested"]] == [("model_dim", "32")]
    assert doc["rerun"]["summary"]["comparable"]["claimed_configuration"] is False
    findings = [f for f in doc["findings"] if f["code"] == "PG805" and f["severity"] == "warning"]
    assert len(findings) == 1
    assert "did not run the claimed configuration" in findings[0]["message"] and "model_dim 32 ->" in findings[0]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True])
def test_run_stopped_before_the_artifact_has_no_artifact_and_no_size_error(tmp_path, fail):
    from pgolf_audit.audit import audit_folder
    from pgolf_audit.context import AuditOptions
    from pgolf_audit.rerun.runner import RerunRequest, run_rerun

    folder = FIXTURES / "checkpoint_only"
    rerun = run_rerun(RerunRequest(folder=folder, nproc=1, device="cpu", seeds=[1], timeout_s=None if fail else 12,
                                   out_dir=tmp_path / "out", env={"CHECKPOINT_ONLY_FAIL": "1"} if fail else {}))
    run = rerun.runs[0]
    assert run["status"] == ("crashed" if fail else "timeout") and "no_artifact" in run["problems"]
    assert run["artifact_path"] is None and run["artifact_bytes"] is None
    assert [(c["path"], c["bytes"], c["is_artifact"]) for c in run["artifact_candidates"]] == [
        ("final_model.pt", 17_000_000, False)]
    findings = audit_folder(folder, AuditOptions(select=["PG8"], rerun_result=rerun)).findings
    assert not [f for f in findings if f.code == "PG803"]
    failed = [f for f in findings if f.code == "PG801"]
    assert failed and "no artifact written" in failed[0].message and "final_model.pt (17,000,000 bytes)" in failed[0].message


def test_data_root_error_is_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from pgolf_audit.cli import main

    result = CliRunner().invoke(main, ["rerun", str(FIXTURES / "crash"), "--nproc", "1", "--device", "cpu",
                                       "--data-root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--data-root" in result.output and "not a directory" in result.output

"""Reference trainer: the bundled train_gpt.py runs on its own and logs in the challenge dialect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from pgolf_audit.reference_impl import trainer
from pgolf_audit.reference_impl.bundle import bundle_source, write_train_script
from pgolf_audit.reference_impl.dataset import build_demo_dataset
from pgolf_audit.reference_impl.quantize import (
    compress_artifact,
    decompress_artifact,
    pack_state_dict,
    unpack_state_dict,
)

torch.set_num_threads(1)

# Shapes from docs/log_formats.md that the project's log parser reads.
NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
FORMATS = {
    "val_step_colon": rf"^step:(?P<step>\d+)/(?P<total>\d+) val_loss:(?P<loss>{NUM}) val_bpb:(?P<bpb>{NUM})(?: train_time:(?P<tt>{NUM})ms)?(?P<rest>.*)$",
    "final_colon": rf"^(?P<label>[A-Za-z][\w\-\.]*(?: [A-Za-z][\w\-\.]*)*?)(?P<params>(?: [A-Za-z_]+:{NUM})*) (?:(?P<pre>sliding) )?val_loss:\s*(?P<loss>{NUM})\s+(?:sliding )?val_bpb:\s*(?P<bpb>{NUM})(?P<rest>.*)$",
    "total_size": r"^Total submission size(?: (?P<fmt>[^:]+?))?: (?P<bytes>\d+) bytes\s*$",
    "serialized_size": r"^Serialized model(?: (?P<fmt>[^:]+?))?: (?P<bytes>\d+) bytes(?P<rest>.*)$",
    "code_size": r"^Code size: (?P<bytes>\d+) bytes\s*$",
    "stop_colon": r"^stopping_early: (?P<reason>\w+) train_time:(?P<tt>\d+)ms(?: step:(?P<step>\d+)/(?P<total>\d+))?\s*$",
    "train_step_time_ms": r"^step:(?P<step>\d+)/(?P<total>\d+) .*?\b(?:train_time|t):(?P<tt>\d+)ms",
    "seed_colon": r"^seed:(?P<seed>\d+)\s*$",
    "seed_hparam": r"^\s+seed: (?P<seed>\d+)\s*$",
    "world_size_colon": r"^world_size:(?P<n>\d+)\b",
    "world_size_hparam": r"^\s+world_size: (?P<n>\d+)\s*$",
    "val_loader_tokens": r"^val_loader:shards pattern=(?P<pat>\S+) tokens:(?P<n>\d+)\s*$",
    "val_tokens_hparam": r"^val_tokens: ?(?P<n>\d+)\s*$",
    "total_eval_time": rf"^total_eval_time:(?P<s>{NUM})s\s*$",
}
SEARCH_FORMATS = {
    "tokenizer_path": r"tokenizer_path[=:]\s?(?P<p>\S+\.model)\b",
    "vocab_hparam": r"(?:^|\s)vocab_size[:=] ?(?P<n>\d+)\b",
}
CODE_GUARD = ("{", "log0(", "print(")


def matches(lines, name):
    pattern = re.compile(FORMATS[name])
    return [m for line in lines if (m := pattern.match(line))]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("data"), vocab_size=384, val_documents=20,
                              train_documents=200, tokenizer_documents=150, train_shard_tokens=30000)


def tiny_env(data, **overrides) -> dict[str, str]:
    env = dict(DATA_PATH=str(data.dataset_path), TOKENIZER_PATH=str(data.tokenizer_path),
               VOCAB_SIZE=str(data.vocab_size), SEED="3", RUN_ID="tiny", NUM_LAYERS="1", MODEL_DIM="32",
               NUM_HEADS="2", NUM_KV_HEADS="1", TRAIN_SEQ_LEN="64", TRAIN_BATCH_TOKENS="512",
               GRAD_ACCUM_STEPS="1", ITERATIONS="6", WARMUP_STEPS="2", WARMDOWN_ITERS="3", VAL_LOSS_EVERY="3",
               TRAIN_LOG_EVERY="1", VAL_BATCH_SIZE="2048", KEEP_FLOAT_MAX_NUMEL="256", ZSTD_LEVEL="3",
               DEVICE="cpu", OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def run_script(folder: Path, env: dict[str, str], *launcher: str) -> subprocess.CompletedProcess:
    # Block the package: a record script that imported it would not be self-contained.
    runner = ("import runpy, sys; sys.modules['pgolf_audit'] = None; sys.argv = ['train_gpt.py']; "
              "runpy.run_path('train_gpt.py', run_name='__main__')")
    command = list(launcher) + ["train_gpt.py"] if launcher else [sys.executable, "-c", runner]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK"))}
    full_env.update(env)
    return subprocess.run(command, cwd=folder, env=full_env, capture_output=True, text=True, timeout=300)


def test_bundle_is_self_contained():
    source = bundle_source()
    compile(source, "train_gpt.py", "exec")
    assert not re.search(r"^\s*(from|import)\s+(\.|pgolf_audit)", source, flags=re.M)
    assert source.count("from __future__ import annotations") == 1
    assert source.rstrip().endswith('if __name__ == "__main__":\n    main()')
    for module in ("shards.py", "byte_lut.py", "model.py", "evaluator.py", "quantize.py", "trainer.py"):
        assert f" {module} " in source


def test_code_dump_is_not_read_as_metrics():
    """The log starts with the script; none of its lines may look like a metric to the parser."""
    for line in bundle_source().splitlines():
        guarded = any(g in line for g in CODE_GUARD)
        for name, pattern in FORMATS.items():
            if name in ("seed_colon", "seed_hparam", "world_size_colon", "world_size_hparam"):
                hit = re.match(pattern, line) and not re.search(r"[\"'()]", line)
            else:
                hit = re.match(pattern, line) and not guarded
            assert not hit, f"{name} matches code line: {line!r}"


def test_bundled_script_trains_and_logs_the_challenge_dialect(demo_data, tmp_path):
    script = write_train_script(tmp_path / "train_gpt.py")
    result = run_script(tmp_path, tiny_env(demo_data))
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "tiny.txt").read_text()
    assert log.startswith(script.read_text())  # the log begins with the code that produced it
    lines = log[len(script.read_text()):].splitlines()
    assert lines[0] == "=" * 100 and lines[1] == "Hyperparameters:"
    assert [m["seed"] for m in matches(lines, "seed_colon")] == ["3"]
    assert [m["seed"] for m in matches(lines, "seed_hparam")] == ["3"]
    assert matches(lines, "world_size_colon")[0]["n"] == "1"
    assert "grad_accum_steps:1" in log
    val_loader = matches(lines, "val_loader_tokens")[0]
    assert int(val_loader["n"]) % 64 == 0 and val_loader["pat"].endswith("fineweb_val_*.bin")
    steps = matches(lines, "val_step_colon")
    assert [int(m["step"]) for m in steps] == [0, 3, 6] and all(m["tt"] for m in steps)
    finals = [m for m in matches(lines, "final_colon") if m["label"].startswith("final_")]
    assert [m["label"] for m in finals] == ["final_int8_zstd_roundtrip", "final_int8_zstd_roundtrip_exact"]
    assert "eval_time:" in finals[0]["rest"]
    assert len(finals[1]["bpb"].split(".")[1]) == 8 and len(finals[1]["loss"].split(".")[1]) == 8
    assert abs(float(finals[0]["bpb"]) - float(finals[1]["bpb"])) < 1e-4
    serialized = int(matches(lines, "serialized_size")[0]["bytes"])
    code = int(matches(lines, "code_size")[0]["bytes"])
    total = int(matches(lines, "total_size")[0]["bytes"])
    assert serialized == (tmp_path / "final_model.int8.ptz").stat().st_size
    assert code == script.stat().st_size and total == serialized + code
    assert matches(lines, "total_size")[0]["fmt"] == "int8+zstd"
    assert re.search(r"^throughput: tokens_per_second:\d+ ", log, re.M)
    assert re.search(r"^peak memory ", log, re.M)
    assert re.search(SEARCH_FORMATS["tokenizer_path"], log)
    assert not matches(lines, "stop_colon")  # reached ITERATIONS
    assert result.stdout.strip().splitlines()[-1].startswith("final_int8_zstd_roundtrip_exact")


def test_wallclock_cap_stops_early(demo_data, tmp_path):
    write_train_script(tmp_path / "train_gpt.py")
    result = run_script(tmp_path, tiny_env(demo_data, ITERATIONS=100000, MAX_WALLCLOCK_SECONDS=0.3,
                                           VAL_LOSS_EVERY=0, TRAIN_LOG_EVERY=0, WARMUP_STEPS=0))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "logs" / "tiny.txt").read_text().splitlines()
    stop = matches(lines, "stop_colon")
    assert len(stop) == 1 and stop[0]["reason"] == "wallclock_cap"
    assert int(stop[0]["tt"]) >= 300 and int(stop[0]["total"]) == 100000
    final_step = matches(lines, "val_step_colon")[-1]
    assert final_step["step"] == stop[0]["step"] and final_step["tt"] == stop[0]["tt"]


# Each torchrun worker runs the script as its __main__, then writes down the threads still
# alive once main() has returned (Linux: /proc/self/task). A process group thread alive at
# that point runs on while the interpreter finalizes, and can abort the process there (SIGABRT).
AFTER_MAIN = """import os, runpy, sys
sys.argv = ["train_gpt.py"]
runpy.run_path("train_gpt.py", run_name="__main__")
if os.path.isdir("/proc/self/task"):
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
    with open(f"threads_after_main_rank{os.environ['RANK']}.txt", "w") as f:
        f.write(" ".join(sorted(names)))
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes(demo_data, tmp_path):
    write_train_script(tmp_path / "train_gpt.py")
    (tmp_path / "after_main.py").write_text(AFTER_MAIN)
    env = tiny_env(demo_data, TRAIN_BATCH_TOKENS=1024, WARMUP_STEPS=0, ITERATIONS=4)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK"))}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "after_main.py"], cwd=tmp_path, env=full_env | env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "tiny.txt").read_text()
    assert re.search(r"^world_size:2 grad_accum_steps:1$", log, re.M)
    assert re.search(r"^final_int8_zstd_roundtrip_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$", log, re.M)
    # destroy_process_group really ended the group: no gloo thread outlives main() on any rank
    if os.path.isdir("/proc/self/task"):
        after = {rank: (tmp_path / f"threads_after_main_rank{rank}.txt").read_text() for rank in (0, 1)}
        assert not {rank: names for rank, names in after.items() if "gloo" in names}, after


def test_training_is_deterministic_for_a_seed(demo_data, tmp_path, monkeypatch):
    def final_line(folder: Path, seed: int) -> str:
        folder.mkdir()
        monkeypatch.chdir(folder)
        for key, value in tiny_env(demo_data, SEED=seed, ITERATIONS=3, VAL_LOSS_EVERY=0, WARMUP_STEPS=0).items():
            monkeypatch.setenv(key, value)
        trainer.main()
        return (folder / "logs" / "tiny.txt").read_text().strip().splitlines()[-1]

    first, again, other = final_line(tmp_path / "a", 5), final_line(tmp_path / "b", 5), final_line(tmp_path / "c", 6)
    assert first == again and first != other


def test_configuration_errors_name_the_file(demo_data, tmp_path, monkeypatch):
    write_train_script(tmp_path / "train_gpt.py")
    wrong_vocab = run_script(tmp_path, tiny_env(demo_data, VOCAB_SIZE=1024))
    assert wrong_vocab.returncode != 0
    assert "VOCAB_SIZE=1024" in wrong_vocab.stderr and str(demo_data.tokenizer_path) in wrong_vocab.stderr
    assert "Traceback" not in wrong_vocab.stderr
    no_data = run_script(tmp_path, tiny_env(demo_data, DATA_PATH=tmp_path / "nowhere"))
    assert no_data.returncode != 0 and "nowhere" in no_data.stderr and "no shard files match" in no_data.stderr
    bad_value = run_script(tmp_path, tiny_env(demo_data, ITERATIONS="many"))
    assert bad_value.returncode != 0 and "ITERATIONS='many'" in bad_value.stderr


def test_hyperparameters_from_env():
    params = trainer.Hyperparameters.from_env({"SEED": "42", "TIE_EMBEDDINGS": "0", "MAX_WALLCLOCK_SECONDS": "90",
                                               "ITERATIONS": "1e3", "RUN_ID": ""})
    assert params.seed == 42 and params.tie_embeddings is False and params.max_wallclock_seconds == 90.0
    assert params.iterations == 1000 and params.run_id == "run_seed42"


def test_lr_warmdown():
    args = trainer.Hyperparameters(iterations=100, warmdown_iters=20, max_wallclock_seconds=0)
    assert trainer.lr_scale(0, 0.0, args) == 1.0
    assert trainer.lr_scale(90, 0.0, args) == pytest.approx(0.5)
    timed = trainer.Hyperparameters(iterations=10**6, warmdown_iters=10, max_wallclock_seconds=1.0)
    assert trainer.lr_scale(95, 950.0, timed) == pytest.approx(0.5)  # 10 ms/step, 50 ms left of a 100 ms warmdown


def test_muon_orthogonalizes():
    torch.manual_seed(0)
    g = torch.randn(16, 48)
    x = trainer.orthogonalize(g, steps=10)
    singular = torch.linalg.svdvals(x)
    assert singular.max() < 1.3 and singular.min() > 0.5  # near-orthogonal rows (Newton-Schulz is approximate)


def test_quantized_artifact_round_trip():
    torch.manual_seed(0)
    state = {"big": torch.randn(64, 128), "small": torch.randn(4, 4), "bias": torch.randn(8),
             "count": torch.tensor([3], dtype=torch.int64)}
    payload = pack_state_dict(state, keep_float_max_numel=100)
    assert payload == pack_state_dict(state, keep_float_max_numel=100)  # deterministic bytes
    restored = unpack_state_dict(payload)
    assert set(restored) == set(state)
    row_max = state["big"].abs().amax(dim=1, keepdim=True)
    assert ((restored["big"] - state["big"]).abs() <= row_max / 127 / 2 + 1e-3).all()
    assert torch.allclose(restored["small"], state["small"], atol=1e-2)
    assert restored["count"].tolist() == [3]
    blob, stats = compress_artifact(state, level=3, keep_float_max_numel=100)
    assert stats.compressed_bytes == len(blob) and stats.payload_bytes == len(payload)
    assert torch.equal(decompress_artifact(blob)["big"], restored["big"])
    with pytest.raises(ValueError, match="magic"):
        unpack_state_dict(b"XXXX" + payload[4:])


# --- GPU path (skipped without CUDA) and the GPU benchmark script ---------------------------

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@requires_cuda
def test_trainer_on_one_gpu(demo_data, tmp_path):
    write_train_script(tmp_path / "train_gpt.py")
    result = run_script(tmp_path, tiny_env(demo_data, DEVICE="cuda"))
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "tiny.txt").read_text()
    assert re.search(r"^  device: cuda$", log, re.M)
    assert re.search(r"^peak memory allocated: \d+ MiB reserved: \d+ MiB$", log, re.M)
    assert re.search(r"^final_int8_zstd_roundtrip_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$", log, re.M)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_trainer_on_two_gpus_nccl(demo_data, tmp_path):
    write_train_script(tmp_path / "train_gpt.py")
    result = run_script(tmp_path, tiny_env(demo_data, DEVICE="cuda", TRAIN_BATCH_TOKENS=1024),
                        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^world_size:2 ", (tmp_path / "logs" / "tiny.txt").read_text(), re.M)


BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_trainer_gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_script_runs_its_cpu_check(tmp_path):
    """The benchmark's pipeline (data, bundle, torchrun, parsing), on CPU with a toy model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK"))}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--device", "cpu", "--nproc", "1", "--layers", "1", "--dim", "32",
         "--heads", "2", "--kv-heads", "1", "--seq-len", "64", "--batch-tokens", "512", "--grad-accum", "1",
         "--steps", "2", "--warmup", "0", "--vocab", "384", "--train-docs", "120", "--workdir", str(tmp_path / "w"),
         "--out", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"^\s+1\s+1\s+[\d.]+\s+[\d,]+", result.stdout, re.M), result.stdout
    summary = json.loads((tmp_path / "bench.json").read_text())
    run = summary["runs"][0]
    assert run["steps"] == 2 and run["tokens_per_second"] > 0 and run["step_avg_ms"] > 0


@pytest.mark.gpu
@requires_cuda
def test_gpu_benchmark_script_on_gpu(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--nproc", "1", "--layers", "2", "--dim", "128", "--heads", "4",
         "--kv-heads", "2", "--seq-len", "256", "--batch-tokens", "16384", "--steps", "5", "--warmup", "2",
         "--vocab", "512", "--train-docs", "300", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "b.json")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run = json.loads((tmp_path / "b.json").read_text())["runs"][0]
    assert run["tokens_per_second"] > 0 and run["peak_allocated_mib"] > 0

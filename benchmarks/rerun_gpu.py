"""GPU measurement of ``pgolf-audit rerun``: claimed vs reproduced, wall vs reported time, and
the harness's overhead against a bare ``torchrun`` of the same script in the same session.

Two record folders, both built here with no download:

- ``demo``: the reference demo record, written by ``pgolf-audit demo --out OUT/demo --device
  cuda`` (3 seeds of the bundled reference trainer, claims from its own logs).
- ``fa3``: a record-style script that attends through FlashAttention 3's ``flash_attn_interface``
  (``tests/fixtures/rerun/fa3_record/train_gpt.py``: ``flash_attn_varlen_func`` over packed
  documents, ``torch.compile(fullgraph=True)``, bf16). FA3 is not installed on the GPU machine,
  so its claim runs (bare torchrun, ``--claim-nproc`` GPUs) and every rerun use the SDPA shim
  that ``--shim-flash-attn`` provides.

For each process count (``--nproc``, default ``1,all``): one bare ``torchrun`` of the first seed
(same environment, fresh compile caches, output read through a pipe as the harness does), then
``pgolf-audit rerun`` of every seed (``--calibrate`` on the demo record). Results accumulate in
``OUT/results.json``; each invocation prints the Markdown table of everything measured so far
(also written to ``OUT/table.md``), so the work can be split into commands of a few minutes:

    python benchmarks/rerun_gpu.py --out OUT --only demo --nproc 1     # builds the demo record first
    python benchmarks/rerun_gpu.py --out OUT --only fa3-claims          # FA3 record + claim runs (all GPUs)
    python benchmarks/rerun_gpu.py --out OUT --only fa3 --nproc 1
    python benchmarks/rerun_gpu.py --out OUT --only demo --nproc all
    python benchmarks/rerun_gpu.py --out OUT --only fa3 --nproc all
    python benchmarks/rerun_gpu.py --out OUT --table                    # the table only

Real merged records (``--real FOLDER ...``): each folder is rerun with nothing typed by hand but
the overrides (``--real-env``, by default ``MAX_WALLCLOCK_SECONDS=45``): the configuration comes
from its README and logs, the data from ``--data-root`` pointing at a small challenge-format data
folder that ``--build-data`` writes from the generated corpus of ``reference_impl.dataset`` (no
download): ``datasets/fineweb10B_sp1024`` with an sp1024 BPE tokenizer trained like the
challenge's (``tokenizers/fineweb_1024_bpe.model``) and ``datasets/fineweb10B_sp8192``
tokenized with a shipped SP8192 model (``--sp8192-model``, e.g. the one inside a record folder):

    python benchmarks/rerun_gpu.py --out OUT --build-data --sp8192-model REC/fineweb_8192_bpe.model \
        --real records/track_10min_16mb/2026-03-17_NaiveBaseline --shim-flash-attn
    python benchmarks/rerun_gpu.py --out OUT --real-table             # the table of real reruns

Without ``--only`` one invocation does everything (about 15-25 minutes on one 8-GPU node).
``--device cpu`` runs the same plumbing with tiny settings as a dry run (no measurement).

Needs torch with CUDA, numpy, sentencepiece, zstandard and libcst (``pip install -e '.[reference]'``).
The driver never imports torch, so it holds no GPU memory while the runs are measured.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FA3_SCRIPT = REPO / "tests" / "fixtures" / "rerun" / "fa3_record" / "train_gpt.py"

try:
    import pgolf_audit  # noqa: F401
except ImportError:  # pragma: no cover - the package must be installed (pip install -e .)
    raise SystemExit("install the package first: pip install -e '.[reference]'") from None

from pgolf_audit.rerun.hardware import query_gpus
from pgolf_audit.rerun.harness import copy_record, launcher_argv
from pgolf_audit.rerun.processes import MARKER_ENV, end_run

FA3_ENV = {
    "NUM_LAYERS": "6", "MODEL_DIM": "384", "NUM_HEADS": "6", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "1024",
    "TRAIN_BATCH_TOKENS": "65536", "ITERATIONS": "200", "WARMUP_STEPS": "3", "MAX_WALLCLOCK_SECONDS": "300",
    "TRAIN_LOG_EVERY": "20", "VARLEN": "1", "COMPILE": "1", "LR": "0.001", "LR_WARMUP": "30",
}
# --device cpu: a dry run of this script's plumbing with tiny settings (not a measurement).
FA3_ENV_CPU = {
    "NUM_LAYERS": "1", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "64",
    "TRAIN_BATCH_TOKENS": "512", "ITERATIONS": "4", "WARMUP_STEPS": "0", "MAX_WALLCLOCK_SECONDS": "300",
    "TRAIN_LOG_EVERY": "1", "VARLEN": "1", "COMPILE": "0", "OMP_NUM_THREADS": "1",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("rerun_gpu_out"), help="working folder (kept between calls)")
    parser.add_argument("--nproc", default="1,all", help="comma-separated process counts; 'all' = every visible GPU")
    parser.add_argument("--only", choices=["demo", "fa3", "fa3-claims"], default=None,
                        help="measure one record only (fa3-claims: only build the FA3 record and its claims)")
    parser.add_argument("--fa3-seeds", default="1,2", help="seeds of the FA3 record")
    parser.add_argument("--claim-nproc", default="all", help="GPUs for the FA3 record's claim runs")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per seed")
    parser.add_argument("--no-calibrate", action="store_true", help="skip --calibrate on the demo reruns")
    parser.add_argument("--table", action="store_true", help="print the table of what is measured and stop")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: dry run of the plumbing with tiny settings (not a measurement)")
    parser.add_argument("--real", nargs="+", type=Path, default=None, help="real record folders to rerun")
    parser.add_argument("--real-env", action="append", default=None, metavar="NAME=VALUE",
                        help="overrides for the real reruns [default: MAX_WALLCLOCK_SECONDS=45]")
    parser.add_argument("--real-seeds", default=None,
                        help="comma-separated seed per --real folder (one seed each) [default: the claimed seeds]")
    parser.add_argument("--real-timeout", type=float, default=None, help="--timeout of the real reruns [default: derived]")
    parser.add_argument("--shim-flash-attn", action="store_true", help="rerun the real records with the FA3 shim")
    parser.add_argument("--build-data", action="store_true", help="write OUT/data (challenge layout) first")
    parser.add_argument("--sp8192-model", type=Path, default=None, help="SP8192 sentencepiece model for OUT/data")
    parser.add_argument("--data-tokens", type=int, default=3_000_000, help="training tokens per dataset (about)")
    parser.add_argument("--real-table", action="store_true", help="print the table of the real reruns and stop")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"[rerun_gpu {_dt.datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def pgolf_audit(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a child process; its output goes to stderr, keeping stdout for the table."""
    return subprocess.run([sys.executable, "-m", "pgolf_audit", *args], stdout=sys.stderr, text=True)


def gpu_count(device: str) -> int:
    return len(query_gpus()[0]) if device == "cuda" else 2


def resolve_nproc(text: str, visible: int) -> list[int]:
    counts = []
    for part in text.split(","):
        n = visible if part.strip() == "all" else int(part)
        if n < 1 or n > visible:
            raise SystemExit(f"--nproc {part}: {visible} GPU(s) visible")
        if n not in counts:
            counts.append(n)
    return counts


# ---- the two records --------------------------------------------------------------------------


def demo_record(out: Path, device: str) -> tuple[Path, dict[str, str], list[int]]:
    """The demo record (built once) and the environment that reproduces it."""
    from pgolf_audit.reference_impl.demo import PRESETS

    preset = "default" if device == "cuda" else "smoke"
    settings = PRESETS[preset]
    root = out / "demo"
    found = sorted((root / "records").glob("*/*_ReferenceDemo"))
    if not found:
        say(f"building the demo record: pgolf-audit demo --device {device} --preset {preset}")
        if pgolf_audit("demo", "--out", str(root), "--device", device, "--preset", preset).returncode != 0:
            raise SystemExit(f"pgolf-audit demo --device {device} failed")
        found = sorted((root / "records").glob("*/*_ReferenceDemo"))
    env = settings.trainer_env() | ({"OMP_NUM_THREADS": "1"} if device == "cpu" else {}) | {
        "DATA_PATH": str(root / "data" / "datasets" / f"demo_sp{settings.vocab_size}"),
        "TOKENIZER_PATH": str(root / "data" / "tokenizers" / f"demo_sp{settings.vocab_size}_bpe.model"),
    }
    return found[0], env, list(settings.seeds)


def shim_pythonpath(out: Path) -> Path:
    """The same shim file --shim-flash-attn installs, for the bare runs of the FA3 record."""
    folder = out / "bare_shim"
    folder.mkdir(parents=True, exist_ok=True)
    source = REPO / "auditor" / "rerun" / "flash_attn_shim.py"
    shutil.copyfile(source, folder / "flash_attn_interface.py")
    return folder


def bare_run(folder: Path, env: dict[str, str], seed: int, nproc: int, work: Path, pythonpath: Path | None,
             timeout: float = 900.0, device: str = "cuda") -> dict:
    """``torchrun`` of the record in a scratch copy, nothing else: wall time and the log."""
    scratch = work / f"bare_n{nproc}_seed{seed}"
    shutil.rmtree(scratch, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    copy_record(folder, scratch)
    full = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    if device == "cpu":
        full["CUDA_VISIBLE_DEVICES"] = ""
    full.update(env, SEED=str(seed), DEVICE=device, PYTHONUNBUFFERED="1",
                TORCHINDUCTOR_CACHE_DIR=str(work / f"bare_cache_n{nproc}_seed{seed}" / "inductor"),
                TRITON_CACHE_DIR=str(work / f"bare_cache_n{nproc}_seed{seed}" / "triton"))
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    marker = uuid.uuid4().hex  # only to end every process if the run hangs
    full[MARKER_ENV] = marker
    started = time.monotonic()
    proc = subprocess.Popen(launcher_argv(sys.executable, nproc), cwd=scratch, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_run(proc.pid, marker)
        output, _ = proc.communicate()
        output += f"\n[rerun_gpu] bare run killed after {timeout:.0f} s\n"
    wall = time.monotonic() - started
    (work / f"bare_n{nproc}_seed{seed}.log").write_text(output, encoding="utf-8")
    return {"seed": seed, "nproc": nproc, "exit_code": proc.returncode, "wall_seconds": round(wall, 3),
            "scratch": str(scratch), "log": output}


def fa3_record(out: Path, demo_env: dict[str, str], seeds: list[int], claim_nproc: int, shim: Path,
               timeout: float, device: str) -> tuple[Path, dict[str, str]]:
    """The FA3 record-style folder with claims from bare torchrun runs (built once)."""
    from pgolf_audit.parsers.logs import parse_log

    env = (FA3_ENV if device == "cuda" else FA3_ENV_CPU) | {"VOCAB_SIZE": demo_env["VOCAB_SIZE"], "DATA_PATH": demo_env["DATA_PATH"],
                     "TOKENIZER_PATH": demo_env["TOKENIZER_PATH"]}
    date = _dt.date.today().isoformat()
    folder = out / "fa3" / "records" / "track_non_record_16mb" / f"{date}_Fa3ShimRecord"
    if (folder / "submission.json").is_file():
        return folder, env
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FA3_SCRIPT, folder / "train_gpt.py")
    results = {}
    for seed in seeds:
        say(f"fa3 claim run: seed {seed} on {claim_nproc} GPU(s) (bare torchrun, shim on PYTHONPATH)")
        run = bare_run(folder, env, seed, claim_nproc, out / "fa3" / "claims", shim, timeout, device)
        if run["exit_code"] != 0:
            raise SystemExit(f"the FA3 claim run failed (exit {run['exit_code']}):\n{run['log'][-3000:]}")
        (folder / f"train_seed{seed}.log").write_text(run["log"], encoding="utf-8")
        record = parse_log(run["log"], "log").runs[-1]
        results[str(seed)] = {"val_bpb": record.headline.val_bpb, "val_loss": record.headline.val_loss,
                              "artifact_bytes": record.total_bytes, "steps": record.steps,
                              "train_time_s": round(record.train_time_ms / 1000, 3)}
    values = [r["val_bpb"] for r in results.values()]
    submission = {
        "name": "FA3 record-style script (rerun benchmark)", "author": "pgolf-audit benchmarks",
        "github_id": "pgolf-audit", "date": date, "track": "non_record_16mb",
        "val_bpb": round(sum(values) / len(values), 8), "bytes_total": max(r["artifact_bytes"] for r in results.values()),
        "seeds": seeds, "seed_results": results,
        "hardware": f"{claim_nproc}x {query_gpus()[0][0]['name']}" if device == "cuda" else f"CPU, {claim_nproc} processes",
        "blurb": "Small GPT attending through flash_attn_interface (varlen, compiled); claims from bare torchrun runs.",
        "non_record_reason": "benchmark fixture: generated data",
    }
    (folder / "submission.json").write_text(json.dumps(submission, indent=2) + "\n", encoding="utf-8")
    settings = " ".join(f"{k}={v}" for k, v in env.items() if k not in ("DATA_PATH", "TOKENIZER_PATH"))
    (folder / "README.md").write_text(
        f"# FA3 record-style script\n\n**val_bpb = {submission['val_bpb']:.4f}** ({len(seeds)} seeds), non-record "
        f"benchmark fixture.\n\nRun: `{settings} SEED=N torchrun --standalone --nproc_per_node={claim_nproc} "
        f"train_gpt.py` with DATA_PATH and TOKENIZER_PATH set.\n", encoding="utf-8")
    return folder, env


# ---- measuring ---------------------------------------------------------------------------------


def measure(name: str, folder: Path, env: dict[str, str], seeds: list[int], nproc: int, out: Path, *,
            shim: Path | None, calibrate: bool, timeout: float, device: str) -> dict:
    work = out / "runs" / f"{name}_n{nproc}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The bare run goes once before and once after the harness, so that neither side alone
    # pays for cold file caches; the table shows their mean.
    say(f"{name}, {nproc} GPU(s): bare torchrun of seed {seeds[0]} (before)")
    before = bare_run(folder, env, seeds[0], nproc, work / "bare_before", shim, timeout, device)
    args = ["rerun", str(folder), "--nproc", str(nproc), "--device", device, "--seeds", ",".join(map(str, seeds)),
            "--timeout", str(timeout), "--out", str(work / "rerun"), "--format", "json", "-o", str(work / "report.json")]
    args += ["--data-path", env["DATA_PATH"], "--tokenizer-path", env["TOKENIZER_PATH"]]
    for key, value in env.items():
        if key not in ("DATA_PATH", "TOKENIZER_PATH"):
            args += ["--env", f"{key}={value}"]
    if shim is not None:
        args.append("--shim-flash-attn")
    if calibrate:
        args.append("--calibrate")
    say(f"{name}, {nproc} GPU(s): pgolf-audit {' '.join(args[:4])} ... ({len(seeds)} seeds)")
    started = time.monotonic()
    cli = subprocess.run([sys.executable, "-m", "pgolf_audit", *args], stdout=sys.stderr)
    total = time.monotonic() - started
    say(f"{name}, {nproc} GPU(s): bare torchrun of seed {seeds[0]} (after)")
    after = bare_run(folder, env, seeds[0], nproc, work / "bare_after", shim, timeout, device)
    bare = {"seed": seeds[0], "nproc": nproc, "exit_code": [before["exit_code"], after["exit_code"]],
            "walls": [before["wall_seconds"], after["wall_seconds"]],
            "wall_seconds": round((before["wall_seconds"] + after["wall_seconds"]) / 2, 3)}
    report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    return {"record": name, "nproc": nproc, "exit_code": cli.returncode, "cli_seconds": round(total, 3),
            "bare": bare, "verdict": report.get("verdict"),
            "findings": [(f["code"], f["severity"], f["message"]) for f in report.get("findings", [])
                         if f["code"].startswith("PG8")],
            "rerun": report.get("rerun")}


def load_results(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_result(out: Path, entry: dict) -> None:
    results = load_results(out)
    results[f"{entry['record']}_n{entry['nproc']}"] = entry
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def table(results: dict) -> str:
    if not results:
        return "nothing measured yet\n"
    first = next(iter(results.values()))["rerun"] or {}
    hw, sw = first.get("hardware") or {}, first.get("software") or {}
    machine = (f"{hw.get('gpu_count')}x {hw.get('gpu_model')} (driver {hw.get('driver')})" if hw.get("device") == "cuda"
               else f"{hw.get('description')} — a CPU dry run of the plumbing, not a measurement")
    lines = [
        f"Measured with `benchmarks/rerun_gpu.py` on {machine}, torch {sw.get('torch')}, CUDA {sw.get('cuda')}, "
        f"{_dt.date.today().isoformat()}. Isolation: {(first.get('isolation') or {}).get('method')}. Bare torchrun: "
        f"the mean of one run before and one after the harness's runs.",
        "",
        "| record | procs | seed | status | val_bpb claimed | reproduced | Δ | in spread | bare torchrun wall s "
        "| harness wall s | overhead s | train s external to end / loop / reported | eval s external / reported "
        "| artifact bytes measured / logged | peak GPU MiB |",
        "|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for key in sorted(results, key=lambda k: (results[k]["record"], results[k]["nproc"])):
        entry = results[key]
        rerun = entry.get("rerun") or {}
        bare = entry.get("bare") or {}
        for run in rerun.get("runs") or []:
            is_bare_seed = run.get("seed") == bare.get("seed")
            overhead = (run["wall_seconds"] - bare["wall_seconds"]) if is_bare_seed and run.get("wall_seconds") else None
            delta = run.get("delta_val_bpb")
            spread = run.get("within_claimed_spread")
            lines.append(
                f"| {entry['record']} | {entry['nproc']} | {run.get('seed')} | {run.get('status')} "
                f"| {fmt(run.get('claimed_val_bpb'), 5)} | {fmt(run.get('val_bpb'), 5)} "
                f"| {'—' if delta is None else f'{delta:+.5f}'} | {'—' if spread is None else ('yes' if spread else 'no')} "
                f"| {fmt(bare.get('wall_seconds')) if is_bare_seed else ''} | {fmt(run.get('wall_seconds'))} "
                f"| {fmt(overhead) if overhead is not None else ''} "
                f"| {fmt(run.get('train_seconds'))} / {fmt(run.get('train_loop_seconds'))} / {fmt(run.get('reported_train_seconds'))} "
                f"| {fmt(run.get('eval_seconds'), 2)} / {fmt(run.get('reported_eval_seconds'), 2)} "
                f"| {fmt(run.get('artifact_bytes'))} / {fmt(run.get('reported_artifact_bytes'))} "
                f"| {fmt(run.get('peak_gpu_memory_mib'))} |")
        walls = sum(r.get("wall_seconds") or 0 for r in rerun.get("runs") or [])
        calibration = rerun.get("calibration") or {}
        cal = (f"; calibration {calibration.get('profile')}: {calibration.get('ms_per_step')} ms/step "
               f"(external {calibration.get('external_ms_per_step')}), speed factor {calibration.get('speed_factor')} "
               f"vs {calibration.get('reference_ms_per_step')} ms/step on 8xH100 SXM, {fmt(calibration.get('wall_seconds'))} s"
               if calibration else "")
        notes.append(f"- {entry['record']}, {entry['nproc']} process(es): `pgolf-audit rerun` took {fmt(entry['cli_seconds'])} s "
                     f"for {fmt(walls)} s of seed runs (preflight, isolation probe, copies, audit and calibration make "
                     f"the rest){cal}; verdict {entry['verdict']}, exit {entry['exit_code']}; PG8xx: "
                     + (", ".join(f"{c} {s}" for c, s, _ in entry["findings"]) or "none"))
    return "\n".join(lines + [""] + notes) + "\n"


# ---- real records ------------------------------------------------------------------------------


def build_challenge_data(root: Path, sp8192_model: Path | None, train_tokens: int) -> dict:
    """A challenge-format data folder from the generated corpus (no download).

    ``datasets/fineweb10B_sp1024`` with its tokenizer trained here (BPE, 1024 pieces, byte
    fallback, ids <unk>=0 <s>=1 </s>=2, as the challenge's), and ``datasets/fineweb10B_sp8192``
    tokenized with the given SP8192 model. One validation shard (the first documents) and
    training shards of 1M tokens from the rest, BOS before each document.
    """
    import numpy as np
    import sentencepiece as spm

    from pgolf_audit.reference_impl.dataset import encode_documents, generate_documents, train_tokenizer
    from pgolf_audit.reference_impl.shards import write_shard

    started = time.monotonic()
    val_docs = generate_documents(11, 900)
    train_docs = generate_documents(12, max(2000, train_tokens // 180))
    tokenizers = {1024: train_tokenizer(train_docs[:3000], 1024, root / "tokenizers" / "fineweb_1024_bpe.model")}
    if sp8192_model is not None:
        target = root / "tokenizers" / "fineweb_8192_bpe.model"
        shutil.copyfile(sp8192_model, target)
        tokenizers[8192] = target
    summary = {}
    for vocab, model in tokenizers.items():
        sp = spm.SentencePieceProcessor(model_file=str(model))
        folder = root / "datasets" / f"fineweb10B_sp{vocab}"
        val = encode_documents(sp, val_docs)
        train = encode_documents(sp, train_docs)
        write_shard(folder / "fineweb_val_000000.bin", val)
        for index, start in enumerate(range(0, train.size, 1_000_000)):
            write_shard(folder / f"fineweb_train_{index:06d}.bin", train[start:start + 1_000_000])
        summary[f"sp{vocab}"] = {"val_tokens": int(val.size), "train_tokens": int(train.size),
                                 "pieces": int(sp.get_piece_size()), "max_id": int(np.max(train))}
    summary["seconds"] = round(time.monotonic() - started, 1)
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def rerun_real(folder: Path, out: Path, data_root: Path, env: list[str], shim: bool, timeout: float | None,
               seed: str | None = None) -> dict:
    name = folder.name
    work = out / "real" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    args = ["rerun", str(folder), "--nproc", "1", "--data-root", str(data_root), "--out", str(work / "rerun"),
            "--format", "json", "-o", str(work / "report.json")]
    for item in env:
        args += ["--env", item]
    if shim:
        args.append("--shim-flash-attn")
    if timeout:
        args += ["--timeout", str(timeout)]
    if seed:
        args += ["--seeds", seed]
    say(f"{name}: pgolf-audit {' '.join(args)}")
    started = time.monotonic()
    cli = subprocess.run([sys.executable, "-m", "pgolf_audit", *args], stdout=sys.stderr)
    total = time.monotonic() - started
    report = json.loads((work / "report.json").read_text(encoding="utf-8")) if (work / "report.json").is_file() else {}
    entry = {"record": name, "exit_code": cli.returncode, "cli_seconds": round(total, 1), "verdict": report.get("verdict"),
             "findings": [(f["code"], f["severity"], f["message"]) for f in report.get("findings", [])
                          if f["code"].startswith("PG8")], "rerun": report.get("rerun")}
    results = load_results(out / "real")
    results[name] = entry
    (out / "real" / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return entry


def real_table(results: dict) -> str:
    if not results:
        return "no real record rerun yet\n"
    first = next(iter(results.values()))["rerun"] or {}
    hw, sw = first.get("hardware") or {}, first.get("software") or {}
    lines = [
        f"Measured with `benchmarks/rerun_gpu.py --real` on {hw.get('description')} (driver {hw.get('driver')}), "
        f"torch {sw.get('torch')}, CUDA {sw.get('cuda')}, {_dt.date.today().isoformat()}.",
        "",
        "| record | seed | status | config vs claimed log | overrides | timeout s | wall s | startup s | compile + warm-up s "
        "| train loop s (reported) | quantization s | eval s (reported) | artifact bytes measured / logged "
        "| val_bpb | peak GPU MiB |",
        "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name, entry in results.items():
        rerun = entry.get("rerun") or {}
        overrides = ", ".join(f"{k}={v['value']}" if v["source"] == "--env" else f"{k} ({v['source']})"
                              for k, v in ((rerun.get("config") or {}).get("overrides") or {}).items())
        for run in rerun.get("runs") or []:
            diff = run.get("config_diff") or {}
            status = diff.get("status")
            config = (f"same ({diff.get('same')} of {diff.get('compared')} equal; requested {len(diff.get('requested') or [])}, "
                      f"explained {len(diff.get('explained') or [])})" if status == "same" else
                      f"differs: {', '.join(d['name'] for d in diff.get('unrequested') or [])}" if status == "differs"
                      else f"not compared: {diff.get('note')}")
            lines.append(
                f"| {name} | {run.get('seed')} | {run.get('status')} | {config} | {overrides} "
                f"| {fmt(rerun.get('timeout_seconds'), 0)} | {fmt(run.get('wall_seconds'))} | {fmt(run.get('startup_seconds'))} "
                f"| {fmt(run.get('compile_warmup_seconds'))} | {fmt(run.get('train_loop_seconds'))} ({fmt(run.get('reported_train_seconds'))}) "
                f"| {fmt(run.get('quantization_seconds'))} | {fmt(run.get('eval_seconds'))} ({fmt(run.get('reported_eval_seconds'))}) "
                f"| {fmt(run.get('artifact_bytes'))} / {fmt(run.get('reported_artifact_bytes'))} "
                f"| {fmt(run.get('val_bpb'), 4)} | {fmt(run.get('peak_gpu_memory_mib'))} |")
        notes.append(f"- {name}: verdict {entry.get('verdict')}, exit {entry.get('exit_code')}, `pgolf-audit rerun` "
                     f"{fmt(entry.get('cli_seconds'))} s; timeout: {(rerun.get('timeout') or {}).get('formula')}; PG8xx: "
                     + ("; ".join(f"{c} {s}: {m[:160]}" for c, s, m in entry.get("findings") or []) or "none"))
    return "\n".join(lines + [""] + notes) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.build_data:
        say(f"building {out / 'data'}")
        print(json.dumps(build_challenge_data(out / "data", args.sp8192_model, args.data_tokens)), file=sys.stderr)
    if args.real or args.real_table:
        seeds = args.real_seeds.split(",") if args.real_seeds else [None] * len(args.real or [])
        for folder, seed in zip(args.real or [], seeds):
            rerun_real(folder.resolve(), out, out / "data", args.real_env or ["MAX_WALLCLOCK_SECONDS=45"],
                       args.shim_flash_attn, args.real_timeout, seed)
        (out / "real").mkdir(parents=True, exist_ok=True)
        text = real_table(load_results(out / "real"))
        (out / "real" / "table.md").write_text(text, encoding="utf-8")
        print(text)
        return
    if args.build_data:
        return
    if not args.table:
        visible = gpu_count(args.device)
        if visible == 0:
            raise SystemExit("no GPU visible (nvidia-smi found none): this benchmark needs CUDA")
        counts = resolve_nproc(args.nproc, visible)
        claim_nproc = resolve_nproc(args.claim_nproc, visible)[0]
        demo_folder, demo_env, demo_seeds = demo_record(out, args.device)
        shim = shim_pythonpath(out)
        fa3_seeds = [int(s) for s in args.fa3_seeds.split(",")]
        if args.only in (None, "fa3", "fa3-claims"):
            fa3_folder, fa3_env = fa3_record(out, demo_env, fa3_seeds, claim_nproc, shim, args.timeout, args.device)
        for nproc in counts if args.only != "fa3-claims" else []:
            if args.only in (None, "demo"):
                save_result(out, measure("demo", demo_folder, demo_env, demo_seeds, nproc, out, shim=None,
                                         calibrate=not args.no_calibrate, timeout=args.timeout, device=args.device))
            if args.only in (None, "fa3"):
                save_result(out, measure("fa3", fa3_folder, fa3_env, fa3_seeds, nproc, out, shim=shim,
                                         calibrate=False, timeout=args.timeout, device=args.device))
    text = table(load_results(out))
    (out / "table.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

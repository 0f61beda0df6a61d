"""GPU benchmark of the reference trainer: tokens/s and step time under torchrun.

Builds a download-free dataset (the demo corpus, a byte-fallback BPE tokenizer of about 1024
pieces), writes the self-contained train_gpt.py, and runs it under
``torchrun --standalone --nproc_per_node=N`` for each N asked for, a fixed number of timed
steps after an untimed warmup, with the challenge baseline's shape by default (9 layers,
width 512, 8/4 heads, sequence 1024, 524,288 tokens per step split over ranks and
accumulation steps). Prints one row per N and writes the numbers as JSON.

    python benchmarks/reference_trainer_gpu.py --nproc 1,8 --steps 50 --out bench.json

Needs torch with CUDA, numpy, sentencepiece, zstandard and libcst (``pip install -e '.[reference]'``
installs them); runs from a checkout without installing the package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

try:
    from pgolf_audit.reference_impl.bundle import write_train_script
    from pgolf_audit.reference_impl.dataset import build_demo_dataset
except ImportError:  # a plain checkout: import the folder as a package of its own
    sys.path.insert(0, str(REPO))
    from reference_impl.bundle import write_train_script  # type: ignore[no-redef]
    from reference_impl.dataset import build_demo_dataset  # type: ignore[no-redef]

THROUGHPUT = re.compile(r"^throughput: tokens_per_second:(\d+) step_avg:([\d.]+)ms train_tokens:(\d+) steps:(\d+)", re.M)
PEAK = re.compile(r"^peak memory (?:allocated: (\d+) MiB reserved: (\d+) MiB|rss: (\d+) MiB)", re.M)
FINAL = re.compile(r"^final_int8_zstd_roundtrip_exact val_loss:(\S+) val_bpb:(\S+)", re.M)
PARAMS = re.compile(r"^model_params:(\d+)", re.M)
ACCUM = re.compile(r"^world_size:(\d+) grad_accum_steps:(\d+)", re.M)
TOTAL = re.compile(r"^Total submission size int8\+zstd: (\d+) bytes", re.M)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", default="1", help="comma-separated process counts, e.g. 1,2,4,8 (default 1)")
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warmup steps before timing")
    parser.add_argument("--layers", type=int, default=9)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-tokens", type=int, default=524288)
    parser.add_argument("--grad-accum", type=int, default=0, help="0: 8 // nproc, as the challenge's baseline")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (compiled during warmup)")
    parser.add_argument("--vocab", type=int, default=1024, help="tokenizer size to train (about; the actual count is used)")
    parser.add_argument("--train-docs", type=int, default=4000, help="generated training documents (cycled)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu (gloo) only to check the script itself on a machine without a GPU")
    parser.add_argument("--workdir", type=Path, default=None, help="where data and runs go (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per run")
    return parser.parse_args(argv)


def run_one(workdir: Path, data, nproc: int, args) -> dict:
    run_dir = workdir / f"run_nproc{nproc}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_train_script(run_dir / "train_gpt.py")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(
        DATA_PATH=str(data.dataset_path), TOKENIZER_PATH=str(data.tokenizer_path), VOCAB_SIZE=str(data.vocab_size),
        RUN_ID=f"bench_nproc{nproc}", SEED="1337", ITERATIONS=str(args.steps), WARMUP_STEPS=str(args.warmup),
        MAX_WALLCLOCK_SECONDS="0", VAL_LOSS_EVERY="0", TRAIN_LOG_EVERY=str(max(1, args.steps // 5)),
        WARMDOWN_ITERS=str(max(1, args.steps // 5)), NUM_LAYERS=str(args.layers), MODEL_DIM=str(args.dim),
        NUM_HEADS=str(args.heads), NUM_KV_HEADS=str(args.kv_heads), TRAIN_SEQ_LEN=str(args.seq_len),
        TRAIN_BATCH_TOKENS=str(args.batch_tokens), GRAD_ACCUM_STEPS=str(args.grad_accum),
        COMPILE="1" if args.compile else "0", DEVICE=args.device,
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "train_gpt.py"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - started
    log_path = run_dir / "logs" / f"bench_nproc{nproc}.txt"
    log = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
    row = {"nproc": nproc, "returncode": result.returncode, "wall_s": round(wall, 1), "log": str(log_path)}
    if result.returncode != 0 or not THROUGHPUT.search(log):
        row["error"] = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        return row
    tokens_per_s, step_ms, train_tokens, steps = THROUGHPUT.findall(log)[-1]
    row.update(tokens_per_second=int(tokens_per_s), tokens_per_second_per_gpu=int(tokens_per_s) // nproc,
               step_avg_ms=float(step_ms), steps=int(steps), train_tokens=int(train_tokens))
    if m := PEAK.search(log):
        if m.group(1):
            row.update(peak_allocated_mib=int(m.group(1)), peak_reserved_mib=int(m.group(2)))
        else:
            row.update(peak_rss_mib=int(m.group(3)))
    if m := FINAL.search(log):
        row.update(val_loss=float(m.group(1)), val_bpb=float(m.group(2)))
    if m := PARAMS.search(log):
        row["model_params"] = int(m.group(1))
    if m := ACCUM.search(log):
        row["grad_accum_steps"] = int(m.group(2))
    if m := TOTAL.search(log):
        row["total_submission_bytes"] = int(m.group(1))
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    counts = [int(n) for n in args.nproc.split(",") if n.strip()]
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device is available; this benchmark measures the GPU path", file=sys.stderr)
        return 2
    available = torch.cuda.device_count() if args.device == "cuda" else os.cpu_count() or 1
    if args.device == "cuda" and max(counts) > available:
        print(f"error: asked for {max(counts)} processes but only {available} GPU(s) are visible", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pgolf_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"data -> {workdir}", flush=True)
    data = build_demo_dataset(workdir, vocab_size=args.vocab, val_documents=200, train_documents=args.train_docs,
                              tokenizer_documents=min(2000, args.train_docs), train_shard_tokens=1_000_000)
    print(f"tokenizer {data.vocab_size} pieces, {data.train_tokens:,} training tokens (cycled), "
          f"{data.val_tokens:,} validation tokens", flush=True)
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    print(f"device: {device_name} x {available}; torch {torch.__version__}; "
          f"{args.layers}L x {args.dim}d, seq {args.seq_len}, {args.batch_tokens:,} tokens/step, "
          f"{args.steps} timed steps after {args.warmup} warmup, bf16 autocast, compile {'on' if args.compile else 'off'}",
          flush=True)
    rows = []
    header = f"{'nproc':>5} {'accum':>5} {'step_avg_ms':>12} {'tokens/s':>12} {'tokens/s/GPU':>13} {'peak_MiB':>9} {'val_bpb':>8} {'wall_s':>7}"
    print(header, flush=True)
    for nproc in counts:
        row = run_one(workdir, data, nproc, args)
        rows.append(row)
        if "error" in row:
            print(f"{nproc:>5} FAILED (exit {row['returncode']}):\n{row['error']}", flush=True)
            continue
        print(f"{nproc:>5} {row.get('grad_accum_steps', 0):>5} {row['step_avg_ms']:>12.2f} {row['tokens_per_second']:>12,} "
              f"{row['tokens_per_second_per_gpu']:>13,} {row.get('peak_allocated_mib', 0):>9} "
              f"{row.get('val_bpb', float('nan')):>8.4f} {row['wall_s']:>7.1f}", flush=True)
    summary = {"device": device_name, "devices_visible": available, "torch": torch.__version__,
               "config": vars(args) | {"workdir": str(workdir), "out": str(args.out) if args.out else None},
               "runs": rows}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"results -> {args.out}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

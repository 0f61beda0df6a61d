"""Reference trainer: a small GPT trained under the challenge's rules and logged in its dialect.

Run as ``torchrun --standalone --nproc_per_node=N train_gpt.py`` (or ``python train_gpt.py``)
from the record folder; configured by environment variables in the challenge's style
(DATA_PATH, TOKENIZER_PATH, VOCAB_SIZE, SEED, RUN_ID, MAX_WALLCLOCK_SECONDS, ITERATIONS and the
model size knobs; see Hyperparameters). CUDA with NCCL and bf16 autocast when available, else
CPU with gloo. Training stops at ITERATIONS or when the timed training wallclock (validation
excluded) reaches MAX_WALLCLOCK_SECONDS. The model is then quantized to int8, compressed with
zstandard into ARTIFACT_PATH, reloaded from that file and scored; the log reports the
artifact, code and total submission bytes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .byte_lut import build_byte_lut
from .evaluator import evaluate, scored_target_count
from .model import GPT, GPTConfig
from .quantize import compress_artifact, decompress_artifact
from .shards import ShardError, check_token_range, list_shards, load_tokens, read_shard


@dataclass
class Hyperparameters:
    """Each field is read from the environment variable of the same name in upper case."""

    data_path: str = "./data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "./data/tokenizers/fineweb_1024_bpe.model"
    run_id: str = ""  # default: run_seed<SEED>
    seed: int = 1337
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    tie_embeddings: bool = True
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    iterations: int = 20000
    max_wallclock_seconds: float = 600.0
    warmup_steps: int = 20  # untimed steps (compilation, caches), then weights and data restart
    warmdown_iters: int = 1200
    train_batch_tokens: int = 524288
    train_seq_len: int = 1024
    grad_accum_steps: int = 0  # 0: 8 // world_size when that divides, else 1
    val_batch_size: int = 524288  # validation tokens per forward pass, all ranks together
    val_loss_every: int = 1000  # 0: only after training
    train_log_every: int = 200
    eval_seq_len: int = 0  # 0: train_seq_len
    eval_stride: int = 0  # 0: non-overlapping windows
    optimizer: str = "muon"  # "muon" (matrices) + Adam (embeddings), or "adam" for everything
    embed_lr: float = 0.05
    head_lr: float = 0.008
    matrix_lr: float = 0.04
    muon_momentum: float = 0.95
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    zstd_level: int = 22
    keep_float_max_numel: int = 16384
    artifact_path: str = "final_model.int8.ptz"
    compile: bool = False
    device: str = ""  # "", "cuda" or "cpu"

    @classmethod
    def from_env(cls, environ=None) -> "Hyperparameters":
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            try:
                if kind is bool:
                    values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    values[f.name] = kind(float(raw)) if kind is int else kind(raw)
            except ValueError:
                raise SystemExit(f"error: {f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
        params = cls(**values)
        if not params.run_id:
            params.run_id = f"run_seed{params.seed}"
        return params

    def model_config(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, num_layers=self.num_layers, model_dim=self.model_dim,
                         num_heads=self.num_heads, num_kv_heads=self.num_kv_heads, mlp_mult=self.mlp_mult,
                         tie_embeddings=self.tie_embeddings, logit_softcap=self.logit_softcap,
                         rope_base=self.rope_base,
                         max_seq_len=max(self.train_seq_len, self.eval_seq_len or self.train_seq_len))


def orthogonalize(matrix: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximate the nearest semi-orthogonal matrix (U V^T of the SVD) by a quintic
    Newton-Schulz iteration, as the Muon optimizer does."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Momentum SGD whose update for each matrix is orthogonalized (Nesterov momentum)."""

    def __init__(self, params, lr: float, momentum: float = 0.95, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                direction = p.grad.add(buf, alpha=group["momentum"])
                update = orthogonalize(direction, group["ns_steps"])
                update *= max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(update, alpha=-group["lr"])


def build_optimizers(model: GPT, args: Hyperparameters) -> list[torch.optim.Optimizer]:
    betas = (args.adam_beta1, args.adam_beta2)
    embed = [model.embed.weight]
    head = [model.head.weight] if model.head is not None else []
    matrices = [p for name, p in model.named_parameters() if name.startswith("blocks.") and p.ndim == 2]
    others = [p for p in model.parameters()
              if all(p is not q for q in embed + head + matrices)]
    adam_groups = [dict(params=embed, lr=args.embed_lr)]
    if head:
        adam_groups.append(dict(params=head, lr=args.head_lr))
    if others:
        adam_groups.append(dict(params=others, lr=args.matrix_lr))
    if args.optimizer == "adam":
        adam_groups.append(dict(params=matrices, lr=args.matrix_lr * 0.1))
        optimizers = [torch.optim.Adam(adam_groups, betas=betas, eps=1e-8)]
    elif args.optimizer == "muon":
        optimizers = [torch.optim.Adam(adam_groups, betas=betas, eps=1e-8),
                      Muon(matrices, lr=args.matrix_lr, momentum=args.muon_momentum)]
    else:
        raise SystemExit(f"error: OPTIMIZER={args.optimizer!r}: expected 'muon' or 'adam'")
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


class TokenStream:
    """Training tokens from the shards in name order, read one shard at a time, cycling."""

    def __init__(self, paths: list[Path], vocab_size: int, tokenizer_name: str):
        self.paths, self.vocab_size, self.tokenizer_name = paths, vocab_size, tokenizer_name
        self.index, self.position = -1, 0
        self.tokens = np.zeros(0, dtype=np.uint16)

    def _next_shard(self) -> None:
        self.index = (self.index + 1) % len(self.paths)
        self.tokens = read_shard(self.paths[self.index])
        check_token_range(self.tokens, self.vocab_size, self.paths[self.index], self.tokenizer_name)
        self.position = 0

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            if self.position >= self.tokens.size:
                self._next_shard()
                continue
            part = self.tokens[self.position:self.position + n]
            parts.append(part)
            self.position += part.size
            n -= part.size
        return np.concatenate(parts)


class DistributedBatches:
    """Each micro step takes one contiguous span of the stream; rank r trains on its slice."""

    def __init__(self, stream: TokenStream, rank: int, world_size: int, local_tokens: int, seq_len: int,
                 device: torch.device):
        self.stream, self.rank, self.world_size = stream, rank, world_size
        self.local_tokens, self.seq_len, self.device = local_tokens, seq_len, device

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        span = self.stream.take(self.local_tokens * self.world_size + 1)
        mine = span[self.rank * self.local_tokens:(self.rank + 1) * self.local_tokens + 1]
        chunk = torch.from_numpy(mine.astype(np.int64)).to(self.device, non_blocking=True)
        return chunk[:-1].view(-1, self.seq_len), chunk[1:].view(-1, self.seq_len)


def lr_scale(step: int, elapsed_ms: float, args: Hyperparameters) -> float:
    """Linear warmdown over the last warmdown_iters steps, by step count and, under a wallclock
    cap, by the time those steps are expected to take."""
    if args.warmdown_iters <= 0:
        return 1.0
    scale = min(1.0, max(args.iterations - step, 0) / args.warmdown_iters)
    if args.max_wallclock_seconds > 0 and step > 0:
        warmdown_ms = args.warmdown_iters * elapsed_ms / step
        remaining_ms = max(1000.0 * args.max_wallclock_seconds - elapsed_ms, 0.0)
        scale = min(scale, remaining_ms / warmdown_ms if warmdown_ms > 0 else 1.0)
    return scale


def code_path() -> Path:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return Path(path) if path else Path(__file__)


def _train(args: Hyperparameters, rank: int, local_rank: int, world_size: int, device: torch.device) -> None:
    master = rank == 0
    code = code_path().read_text(encoding="utf-8")
    log_file = Path("logs") / f"{args.run_id}.txt"
    if master:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("", encoding="utf-8")

    def log0(message: str, console: bool = True) -> None:
        if not master:
            return
        if console:
            print(message, flush=True)
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(message + "\n")

    # The log starts with the code that produced it, then the effective configuration.
    log0(code.rstrip("\n"), console=False)
    log0("=" * 100, console=False)
    log0("Hyperparameters:")
    for name, value in dataclasses.asdict(args).items():
        log0(f"  {name}: {value}")
    log0(f"  world_size: {world_size}")
    log0(f"  device: {device.type}")
    log0(f"  torch: {torch.__version__}")

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    import sentencepiece as spm

    tokenizer_path = Path(args.tokenizer_path)
    if not tokenizer_path.is_file():
        raise SystemExit(f"error: TOKENIZER_PATH {tokenizer_path}: tokenizer file not found")
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    if int(sp.get_piece_size()) != args.vocab_size:
        raise SystemExit(f"error: VOCAB_SIZE={args.vocab_size} but tokenizer {tokenizer_path} has "
                         f"{sp.get_piece_size()} pieces: tokenizer and configuration do not match")
    lut = build_byte_lut(sp, args.vocab_size)
    val_pattern = str(Path(args.data_path) / "fineweb_val_*.bin")
    train_paths = list_shards(Path(args.data_path) / "fineweb_train_*.bin")
    val_tokens = load_tokens(val_pattern, args.vocab_size, str(tokenizer_path))
    eval_seq_len = args.eval_seq_len or args.train_seq_len
    scored = scored_target_count(val_tokens.size, eval_seq_len)
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={tokenizer_path}")
    log0(f"train_loader:dataset:{Path(args.data_path).name} train_shards:{len(train_paths)}")
    log0(f"val_loader:shards pattern={val_pattern} tokens:{scored}")

    base_model = GPT(args.model_config()).to(device)
    model = base_model
    if args.compile:
        model = torch.compile(base_model)
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizers = build_optimizers(base_model, args)
    accum = args.grad_accum_steps or (8 // world_size if 8 % world_size == 0 else 1)
    local_tokens = args.train_batch_tokens // (world_size * accum)
    if local_tokens <= 0 or local_tokens % args.train_seq_len:
        raise SystemExit(f"error: TRAIN_BATCH_TOKENS={args.train_batch_tokens} over {world_size} ranks x "
                         f"{accum} accumulation steps is not a whole number of TRAIN_SEQ_LEN={args.train_seq_len}")
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None
    val_windows_per_batch = max(1, args.val_batch_size // (world_size * eval_seq_len))
    log0(f"model_params:{base_model.num_parameters()}")
    log0(f"world_size:{world_size} grad_accum_steps:{accum}")
    log0(f"attention_mode:{'gqa' if args.num_kv_heads != args.num_heads else 'mha'} "
         f"num_heads:{args.num_heads} num_kv_heads:{args.num_kv_heads}")
    log0(f"tie_embeddings:{args.tie_embeddings} embed_lr:{args.embed_lr} "
         f"head_lr:{args.head_lr if not args.tie_embeddings else 0.0} matrix_lr:{args.matrix_lr} optimizer:{args.optimizer}")
    log0(f"train_batch_tokens:{args.train_batch_tokens} train_seq_len:{args.train_seq_len} "
         f"iterations:{args.iterations} warmup_steps:{args.warmup_steps} "
         f"max_wallclock_seconds:{args.max_wallclock_seconds:.3f}")
    log0(f"seed:{args.seed}")

    def new_batches() -> DistributedBatches:
        return DistributedBatches(TokenStream(train_paths, args.vocab_size, str(tokenizer_path)), rank,
                                  world_size, local_tokens, args.train_seq_len, device)

    def train_step(batches: DistributedBatches, scale: float) -> float:
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * scale
        total = 0.0
        for micro in range(accum):
            inputs, targets = batches.next_batch()
            sync = world_size == 1 or micro == accum - 1
            context = model.no_sync() if not sync else contextlib.nullcontext()
            with context:
                with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    logits = model(inputs)
                loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
                (loss / accum).backward()
            total += loss.detach().float().item() / accum
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        return total

    def run_validation():
        return evaluate(base_model, val_tokens, lut, seq_len=eval_seq_len, batch_size=val_windows_per_batch,
                        device=device, autocast_dtype=autocast_dtype, rank=rank, world_size=world_size)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Untimed warmup (compilation, allocator, caches); then the weights, optimizer and data restart.
    if args.warmup_steps > 0:
        initial_model = copy.deepcopy(base_model.state_dict())
        initial_optimizers = [copy.deepcopy(opt.state_dict()) for opt in optimizers]
        warmup_batches = new_batches()
        for step in range(args.warmup_steps):
            train_step(warmup_batches, 1.0)
            log0(f"warmup_step:{step + 1}/{args.warmup_steps}")
        base_model.load_state_dict(initial_model)
        for opt, state in zip(optimizers, initial_optimizers):
            opt.load_state_dict(state)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    batches = new_batches()
    max_ms = 1000.0 * args.max_wallclock_seconds if args.max_wallclock_seconds > 0 else float("inf")
    training_ms = 0.0
    stop_after: int | None = None
    step = 0
    sync()
    started = time.perf_counter()
    while True:
        last = step == args.iterations or (stop_after is not None and step >= stop_after)
        if last or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
            sync()
            training_ms += 1000.0 * (time.perf_counter() - started)
            result = run_validation()
            log0(f"step:{step}/{args.iterations} val_loss:{result.val_loss:.4f} val_bpb:{result.val_bpb:.4f} "
                 f"train_time:{training_ms:.0f}ms step_avg:{training_ms / max(step, 1):.2f}ms")
            sync()
            started = time.perf_counter()
        if last:
            if stop_after is not None and step < args.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{training_ms:.0f}ms step:{step}/{args.iterations}")
            break
        elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - started)
        train_loss = train_step(batches, lr_scale(step, elapsed_ms, args))
        step += 1
        elapsed_ms = training_ms + 1000.0 * (time.perf_counter() - started)
        if args.train_log_every > 0 and (step <= 10 or step % args.train_log_every == 0):
            log0(f"step:{step}/{args.iterations} train_loss:{train_loss:.4f} "
                 f"train_time:{elapsed_ms:.0f}ms step_avg:{elapsed_ms / step:.2f}ms")
        reached_cap = torch.tensor(float(elapsed_ms >= max_ms), device=device)
        if world_size > 1:
            dist.all_reduce(reached_cap, op=dist.ReduceOp.MAX)  # every rank stops at the same step
        if stop_after is None and reached_cap.item() > 0:
            stop_after = step

    train_tokens = step * args.train_batch_tokens
    log0(f"throughput: tokens_per_second:{train_tokens / max(training_ms / 1000.0, 1e-9):.0f} "
         f"step_avg:{training_ms / max(step, 1):.2f}ms train_tokens:{train_tokens} steps:{step}")
    if device.type == "cuda":
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")
    else:
        log0(f"peak memory rss: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")

    # Artifact: int8 + zstd, written by rank 0, then read back from the file by every rank.
    artifact = Path(args.artifact_path)
    if master:
        blob, stats = compress_artifact(base_model.state_dict(), args.zstd_level, args.keep_float_max_numel)
        artifact.write_bytes(blob)
        code_bytes = len(code.encode("utf-8"))
        log0(f"Serialized model int8+zstd: {stats.compressed_bytes} bytes (payload:{stats.payload_bytes} "
             f"raw_torch:{stats.raw_float_bytes} payload_ratio:{stats.raw_float_bytes / stats.payload_bytes:.2f}x)")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size int8+zstd: {stats.compressed_bytes + code_bytes} bytes")
    if world_size > 1:
        dist.barrier()
    base_model.load_state_dict(decompress_artifact(artifact.read_bytes()), strict=True)
    sync()
    result = evaluate(base_model, val_tokens, lut, seq_len=eval_seq_len, stride=args.eval_stride or None,
                      batch_size=val_windows_per_batch, device=device, autocast_dtype=autocast_dtype,
                      rank=rank, world_size=world_size)
    log0(f"final_int8_zstd_roundtrip val_loss:{result.val_loss:.4f} val_bpb:{result.val_bpb:.4f} "
         f"eval_time:{result.eval_time_ms:.0f}ms")
    log0(f"final_int8_zstd_roundtrip_exact val_loss:{result.val_loss:.8f} val_bpb:{result.val_bpb:.8f}")


def main() -> None:
    args = Hyperparameters.from_env()
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = args.device != "cpu" and torch.cuda.is_available()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: DEVICE=cuda but no CUDA device is available")
    if use_cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if distributed and world_size > 1:
        # Imported before the group exists: DistributedDataParallel imports this module lazily,
        # and its functions take ``group=group.WORLD`` as a default evaluated at import, which
        # would keep the default group alive past destroy_process_group. Its gloo worker threads
        # would then outlive main() and could release a finished collective's tensors while the
        # interpreter is finalizing: Python ends such a thread, and the C++ runtime aborts the
        # process ("terminate called without an active exception", SIGABRT).
        from torch.distributed.nn import functional as _  # noqa: F401
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                **({"device_id": device} if use_cuda else {}))
    try:
        _train(args, rank, local_rank, world_size, device)
        if dist.is_initialized():
            dist.barrier()  # no rank tears the group down while another still talks to it
    except (ShardError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()

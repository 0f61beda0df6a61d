"""``pgolf-audit rerun`` pieces on a CUDA device: the flash-attention shim in bf16 against
SDPA in float32, and one rerun of the FA3 record-style fixture through the shim.
Skipped cleanly where no CUDA device is present (CI); ``benchmarks/rerun_gpu.py`` runs the
full GPU measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

FIXTURES = Path(__file__).parent / "fixtures" / "rerun"


def test_shim_bf16_on_cuda_matches_float32_sdpa():
    from pgolf_audit.rerun import flash_attn_shim as fa

    torch.manual_seed(0)
    q = torch.randn(2, 256, 8, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, 256, 2, 64, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(2, 256, 2, 64, device="cuda", dtype=torch.bfloat16)
    out = fa.flash_attn_func(q, k, v, causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.float().transpose(1, 2), k.float().repeat_interleave(4, 2).transpose(1, 2),
        v.float().repeat_interleave(4, 2).transpose(1, 2), is_causal=True).transpose(1, 2)
    assert out.dtype == torch.bfloat16 and (out.float() - ref).abs().max().item() < 3e-2
    cu = torch.tensor([0, 100, 300, 512], dtype=torch.int32, device="cuda")
    packed = fa.flash_attn_varlen_func(q.reshape(512, 8, 64), k.reshape(512, 2, 64), v.reshape(512, 2, 64),
                                       cu, cu, 212, 212, causal=True)
    loop, _ = fa._varlen_loop(q.reshape(512, 8, 64).float(), k.reshape(512, 2, 64).float(),
                              v.reshape(512, 2, 64).float(), cu, cu.clone(), 64 ** -0.5, True, (-1, -1), 0.0, False)
    assert (packed.float() - loop).abs().max().item() < 3e-2


def test_fa3_record_reruns_on_cuda(tmp_path):
    pytest.importorskip("sentencepiece")
    from pgolf_audit.reference_impl.dataset import build_demo_dataset
    from pgolf_audit.rerun.runner import RerunRequest, run_rerun

    data = build_demo_dataset(tmp_path / "data", vocab_size=384, val_documents=16, train_documents=160,
                              tokenizer_documents=120, train_shard_tokens=30000)
    env = {"VOCAB_SIZE": "384", "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
           "TRAIN_SEQ_LEN": "128", "TRAIN_BATCH_TOKENS": "8192", "ITERATIONS": "10", "WARMUP_STEPS": "1",
           "VARLEN": "1"}
    rerun = run_rerun(RerunRequest(folder=FIXTURES / "fa3_record", nproc=1, device="cuda", seeds=[1], timeout_s=300,
                                   out_dir=tmp_path / "out", env=env, data_path=str(data.dataset_path),
                                   tokenizer_path=str(data.tokenizer_path), shim_flash_attn=True))
    run = rerun.runs[0]
    assert run["status"] == "ok", run["log_tail"]
    assert run["artifact_bytes"] == run["reported_artifact_bytes"]
    assert run["peak_gpu_memory_mib"] is None or run["peak_gpu_memory_mib"] > 0

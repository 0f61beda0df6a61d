"""Pieces of ``pgolf-audit rerun`` that need no launch: the flash-attention shim against a plain
reference, the network guard, process-tree ending, the artifact rule, FA3 usage detection and
the reproduced-vs-claimed comparison."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst
import pytest

from pgolf_audit.rerun import compare, network_guard
from pgolf_audit.rerun.examples import example_calibration, example_rerun, example_run
from pgolf_audit.rerun.fa3_usage import fa3_usage
from pgolf_audit.rerun.hardware import is_h100_sxm
from pgolf_audit.rerun.harness import copy_record, is_artifact_like, is_launcher_line, script_failure
from pgolf_audit.rerun.processes import MARKER_ENV, end_run, run_processes

# ---- flash-attention shim ---------------------------------------------------------------------

torch = pytest.importorskip("torch")
from pgolf_audit.rerun import flash_attn_shim as fa  # noqa: E402


def naive_attention(q, k, v, scale, causal, window, softcap):
    """FA3's definition, one query row at a time in float64: (out, lse) with bottom-right causal
    alignment, windows, softcap, GQA; rows with no key give 0 and lse +inf."""
    b, sq, h, _ = q.shape
    sk, hk = k.shape[1], k.shape[2]
    out = torch.zeros(b, sq, h, v.shape[-1], dtype=torch.float64)
    lse = torch.full((b, h, sq), math.inf, dtype=torch.float64)
    left, right = window
    if causal:
        right = 0
    for bi in range(b):
        for hi in range(h):
            for i in range(sq):
                aligned = i + sk - sq
                keys = [j for j in range(sk) if (left < 0 or j - aligned >= -left) and (right < 0 or j - aligned <= right)]
                if not keys:
                    continue
                s = torch.stack([(q[bi, i, hi].double() @ k[bi, j, hi // (h // hk)].double()) * scale for j in keys])
                if softcap > 0:
                    s = softcap * torch.tanh(s / softcap)
                lse[bi, hi, i] = torch.logsumexp(s, 0)
                p = torch.softmax(s, 0)
                out[bi, i, hi] = sum(p[n] * v[bi, j, hi // (h // hk)].double() for n, j in enumerate(keys))
    return out, lse


@pytest.mark.parametrize("sq, sk, causal, window, softcap, heads, kv_heads", [
    (7, 7, True, (-1, -1), 0.0, 4, 2),     # the common call: causal self-attention, GQA
    (7, 7, False, (-1, -1), 0.0, 4, 4),
    (5, 9, True, (-1, -1), 0.0, 2, 1),     # bottom-right aligned causal mask
    (9, 5, True, (-1, -1), 0.0, 2, 1),     # rows with no key
    (8, 8, True, (3, -1), 0.0, 4, 2),      # sliding window
    (8, 8, False, (2, 1), 0.0, 2, 2),
    (6, 6, True, (-1, -1), 5.0, 2, 1),     # softcap
])
def test_dense_shim_matches_fa3_definition(sq, sk, causal, window, softcap, heads, kv_heads):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, sq, heads, 8), torch.randn(2, sk, kv_heads, 8), torch.randn(2, sk, kv_heads, 8)
    out, lse = fa.flash_attn_func(q, k, v, causal=causal, window_size=window, softcap=softcap, return_attn_probs=True)
    ref_out, ref_lse = naive_attention(q, k, v, 8 ** -0.5, causal, window, softcap)
    assert out.shape == q.shape and out.dtype == q.dtype and lse.shape == (2, heads, sq)
    assert torch.allclose(out.double(), ref_out, atol=1e-5)
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    assert torch.allclose(lse.double()[finite], ref_lse[finite], atol=1e-5)
    # the default return is the output alone (FA3 since 2025)
    assert isinstance(fa.flash_attn_func(q, k, v, causal=causal, window_size=window, softcap=softcap), torch.Tensor)


def test_dense_shim_accepts_positional_scale_and_old_keywords():
    torch.manual_seed(1)
    q, k, v = torch.randn(1, 5, 2, 4), torch.randn(1, 5, 2, 4), torch.randn(1, 5, 2, 4)
    a = fa.flash_attn_func(q, k, v, 0.3, True)
    b = fa.flash_attn_func(q, k, v, softmax_scale=0.3, causal=True, deterministic=True, gqa_parallel=False)
    assert torch.equal(a, b)
    with pytest.raises(NotImplementedError):
        fa.flash_attn_func(q, k, v, qv=q)


def test_tuple_return_style(monkeypatch):
    monkeypatch.setattr(fa, "RETURNS_TUPLE", True)
    q = torch.randn(1, 4, 2, 4)
    out, lse = fa.flash_attn_func(q, q, q, causal=True)
    assert out.shape == q.shape and lse.shape == (1, 2, 4) and not lse.requires_grad


def varlen_reference(q, k, v, cu, causal, window, softcap):
    out = torch.zeros(q.shape[0], q.shape[1], v.shape[-1], dtype=torch.float64)
    lse = torch.full((q.shape[1], q.shape[0]), math.inf, dtype=torch.float64)
    bounds = cu.tolist()
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            o, l = naive_attention(q[a:b][None], k[a:b][None], v[a:b][None], 8 ** -0.5, causal, window, softcap)
            out[a:b], lse[:, a:b] = o[0], l[0]
    return out, lse


@pytest.mark.parametrize("causal, window, softcap", [(True, (-1, -1), 0.0), (False, (-1, -1), 0.0),
                                                      (True, (2, -1), 0.0), (True, (-1, -1), 4.0)])
def test_varlen_shim_matches_per_sequence_attention(causal, window, softcap):
    torch.manual_seed(2)
    # empty sequences, sequences crossing block boundaries, padded boundaries at the end
    cu = torch.tensor([0, 3, 3, 10, 14, 20, 23, 23, 23], dtype=torch.int32)
    q = torch.randn(23, 4, 8, requires_grad=True)
    k = torch.randn(23, 2, 8, requires_grad=True)
    v = torch.randn(23, 2, 8, requires_grad=True)
    out, lse = fa.flash_attn_varlen_func(q, k, v, cu, cu, 7, 7, causal=causal, window_size=window, softcap=softcap,
                                         return_attn_probs=True)
    ref_out, ref_lse = varlen_reference(q.detach(), k.detach(), v.detach(), cu, causal, window, softcap)
    assert torch.allclose(out.double(), ref_out, atol=1e-5)
    assert torch.allclose(lse.double(), ref_lse, atol=1e-5)
    # gradients of the blocked path equal those of the one-sequence-at-a-time path
    loop_out, _ = fa._varlen_loop(q, k, v, cu, cu.clone(), 8 ** -0.5, causal, window, softcap, False)
    grad = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), grad), torch.autograd.grad(loop_out, (q, k, v), grad)):
        assert torch.allclose(a, b, atol=1e-5)


def test_shim_traces_under_fullgraph_compile():
    def forward(q, k, v, cu):
        dense = fa.flash_attn_func(q, k, v, causal=True)
        packed = fa.flash_attn_varlen_func(q[0], k[0], v[0], cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=8,
                                           max_seqlen_k=8, causal=True, window_size=(-1, -1))
        return dense + packed[None]

    compiled = torch.compile(forward, fullgraph=True, backend="eager")  # dynamo tracing, no code generation
    q, k, v = torch.randn(1, 20, 4, 8), torch.randn(1, 20, 2, 8), torch.randn(1, 20, 2, 8)
    cu = torch.tensor([0, 5, 13, 20, 20], dtype=torch.int32)
    assert torch.allclose(compiled(q, k, v, cu), forward(q, k, v, cu))


# ---- FA3 usage ------------------------------------------------------------------------------


@pytest.mark.parametrize("code, imports, tuple_style", [
    ("from flash_attn_interface import flash_attn_func as f3\ny = f3(q, k, v, causal=True)\n", True, False),
    ("from flash_attn_interface import flash_attn_func as f3\ny = f3(q, k, v, causal=True)[0]\n", True, True),
    ("import flash_attn_interface as fi\nout, lse = fi.flash_attn_func(q, k, v)\n", True, True),
    ("from flash_attn_interface import flash_attn_varlen_func\ny = flash_attn_varlen_func(q, k, v, c, c, 8, 8)[None]\n",
     True, False),
    ("import torch\ny = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n", False, False),
])
def test_fa3_usage(code, imports, tuple_style):
    usage = fa3_usage(cst.parse_module(code))
    assert (usage.imports, usage.tuple_style) == (imports, tuple_style)


# ---- network guard --------------------------------------------------------------------------


@pytest.fixture
def guard(tmp_path, monkeypatch):
    log = tmp_path / "net.jsonl"
    monkeypatch.setenv(network_guard.LOG_ENV, str(log))
    network_guard.install()
    try:
        yield log
    finally:
        network_guard.uninstall()


def test_guard_refuses_remote_and_keeps_loopback(guard):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("192.0.2.1", 80), timeout=2)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", network_guard.DEAD_PROXY_PORT), timeout=2)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    socket.create_connection(server.getsockname(), timeout=2).close()     # loopback still works
    socket.getaddrinfo("localhost", 80)
    server.close()
    import urllib.request

    assert urllib.request.getproxies() == {}  # Python clients go direct, so the guard sees the real target
    entries = [json.loads(line) for line in guard.read_text().splitlines()]
    assert [e["target"] for e in entries] == ["192.0.2.1:80", "example.com", f"127.0.0.1:{network_guard.DEAD_PROXY_PORT}"]
    assert all(e["where"] for e in entries)


def test_guard_is_gone_after_uninstall():
    network_guard.install()
    network_guard.uninstall()
    assert socket.socket.connect.__name__ == "connect" and socket.getaddrinfo.__module__ == "socket"


@pytest.mark.parametrize("host, local", [("localhost", True), ("127.0.0.1", True), ("::1", True), ("[::1]", True),
                                         ("0.0.0.0", True), ("::ffff:127.0.0.1", True), ("192.0.2.1", False),
                                         ("example.com", False), (None, True)])
def test_loopback_names(host, local):
    assert network_guard.is_local_host(host) is local


# ---- processes --------------------------------------------------------------------------------


def test_end_run_reaches_processes_in_other_sessions(tmp_path):
    marker = f"unit-{os.getpid()}-{time.monotonic_ns()}"
    parent = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
              "print('ready', flush=True)\n"
              "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], env={**os.environ, MARKER_ENV: marker},
                            stdout=subprocess.PIPE, start_new_session=True, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while len(run_processes(proc.pid, marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(run_processes(proc.pid, marker)) == 2
    proc.kill()  # the parent dies first: the daemon is orphaned, found by its marker only
    proc.wait()
    report = end_run(None, marker, grace_s=2)
    assert report.found == 1 and report.survivors == []
    assert run_processes(None, marker) == set()


# ---- artifact rule, copies, log lines --------------------------------------------------------


@pytest.mark.parametrize("rel, size, expected", [
    ("final_model.int8.ptz", 100, True), ("final_model.pt", 100, True), ("model.bin", 5, True),
    ("final_model_seed42.int6.ptz", 10, True), ("ckpt/big.dat", 2_000_000, True), ("small.dat", 2_000, False),
    ("logs/run.txt", 5_000_000, False), ("train_gpt.py", 2_000_000, False), ("__pycache__/x.pt", 10, False),
    (".cache/model.pt", 10, False),
])
def test_artifact_rule(rel, size, expected):
    assert is_artifact_like(rel, size) is expected


def test_scratch_copy_leaves_shipped_artifacts_out(tmp_path):
    src = tmp_path / "rec"
    (src / "logs").mkdir(parents=True)
    (src / "train_gpt.py").write_text("print(1)\n")
    (src / "final_model_seed1.int8.ptz").write_bytes(b"x" * 10)
    (src / "logs" / "train_seed1.txt").write_text("log\n")
    excluded = copy_record(src, tmp_path / "scratch")
    assert excluded == ["final_model_seed1.int8.ptz"]
    assert sorted(p.name for p in (tmp_path / "scratch").rglob("*") if p.is_file()) == ["train_gpt.py", "train_seed1.txt"]


def test_script_failure_skips_torchrun_summary():
    lines = ["step:1/10 train_loss:5.0", "Traceback (most recent call last):", '  File "train_gpt.py", line 3',
             "RuntimeError: boom",
             "E1121 10:40:19.830000 5880 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 0",
             "Traceback (most recent call last):", '  File "run.py", line 1',
             "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "=" * 60, "train_gpt.py FAILED"]
    found = script_failure(lines)
    assert found["error_line"] == "RuntimeError: boom"
    assert found["last_script_line"] == "RuntimeError: boom"
    assert found["error_excerpt"].splitlines()[0].startswith("Traceback")
    assert is_launcher_line(lines[4]) and not is_launcher_line(lines[0])


def test_h100_sxm_names():
    assert is_h100_sxm("NVIDIA H100 80GB HBM3")
    assert not is_h100_sxm("NVIDIA H100 PCIe") and not is_h100_sxm("NVIDIA H100 NVL") and not is_h100_sxm("NVIDIA H200")


# ---- comparison ---------------------------------------------------------------------------------


def test_summary_of_a_reproduction():
    summary = compare.summarize(example_rerun(), example_rerun().limits)
    assert summary["completed"] == 3 and summary["within_claimed_spread"] is True
    assert summary["comparable"]["timings"] and summary["comparable"]["val_bpb"]
    assert summary["band"] == [pytest.approx(1.17489788), pytest.approx(1.17704757)]
    assert abs(summary["delta_val_bpb_mean"]) < 1e-4


def test_summary_off_target_with_calibration():
    rerun = example_rerun([example_run(42, 1.29, steps=980, eval_seconds=3050.0)], hardware="1xH100",
                          calibration=example_calibration(8.0))
    summary = compare.summarize(rerun, rerun.limits)
    assert summary["within_claimed_spread"] is False
    assert not summary["comparable"]["timings"] and not summary["comparable"]["val_bpb"]
    assert summary["normalized_eval_seconds_max"] == pytest.approx(381.25)
    # the same hardware but the claimed number of steps: scores are comparable again
    rerun = example_rerun([example_run(42, 1.1759)], hardware="1xH100")
    assert compare.comparability(rerun)["val_bpb"] is True


def test_example_sections_match_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from pgolf_audit.rerun.schema import RERUN_SCHEMA

    jsonschema.validate(example_rerun().to_json(), RERUN_SCHEMA)
    jsonschema.validate(example_rerun([example_run(42, None, status="crashed", exit_code=1)], hardware="cpu",
                                      calibration=example_calibration(3.0)).to_json(), RERUN_SCHEMA)


def test_rerun_result_json_round_trip():
    from dataclasses import fields

    from pgolf_audit.rerun.result import RerunResult

    rerun = example_rerun()
    doc = rerun.to_json()
    assert list(doc) == list(RerunResult.KEY_ORDER)
    assert set(RerunResult.KEY_ORDER) == {f.name for f in fields(RerunResult)}
    assert RerunResult.from_json(json.loads(json.dumps(doc))) == rerun
    with pytest.raises(ValueError, match="unknown key"):
        RerunResult.from_json({**doc, "surprise": 1})


def test_gpu_memory_sampler_keeps_the_peak_per_gpu():
    from pgolf_audit.rerun.hardware import GpuMemorySampler

    sampler = GpuMemorySampler()
    sampler.baseline_mib = {0: 500, 1: 400}
    for text in ("0, 1000\n1, 900\n", "0, 3000\n1, 800\n", "garbage\n0, 2500\n"):
        sampler._record(sampler._parse(text))
    result = sampler.result()
    assert result["peak_gpu_memory_mib"] == 3000 and result["peak_gpu_memory_added_mib"] == 2500
    assert result["peak_gpu_memory_per_gpu_mib"] == {"0": 3000, "1": 900}


def test_hardware_and_memory_from_a_fake_nvidia_smi(tmp_path, monkeypatch):
    """nvidia-smi's CSV answers as an 8xH100 SXM node gives them (a stand-in script on PATH)."""
    from pgolf_audit.rerun.hardware import GpuMemorySampler, describe_hardware

    fake = tmp_path / "nvidia-smi"
    rows = "\\n".join(f"{i}, NVIDIA H100 80GB HBM3, 81559, GPU-{i:04d}, 550.90.12" for i in range(8))
    fake.write_text("#!/bin/sh\n"
                    'case "$1" in\n'
                    f'  --query-gpu=index,name*) printf "{rows}\\n" ;;\n'
                    '  *) printf "0, 2048\\n1, 1024\\n" ;;\n'
                    "esac\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    hardware = describe_hardware("cuda", 8)
    assert hardware["matches_target"] and hardware["gpu_count"] == 8 and hardware["description"] == "8x NVIDIA H100 80GB HBM3"
    assert not describe_hardware("cuda", 1)["matches_target"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert describe_hardware("cuda", 2)["gpu_count"] == 2
    sampler = GpuMemorySampler(interval_s=0.05)
    assert sampler.start()
    time.sleep(0.3)
    sampler.stop()
    assert sampler.result()["peak_gpu_memory_mib"] == 2048 and sampler.samples >= 2


def test_child_environment_keeps_safety_variables_and_the_callers_pythonpath(tmp_path, monkeypatch):
    from pgolf_audit.rerun.harness import SeedSpec, child_environment
    from pgolf_audit.rerun.isolation import GUARD, Isolation

    monkeypatch.setenv("PYTHONPATH", "/opt/deps:/opt/more")
    monkeypatch.setenv("NVSHMEM_DISABLE_NVLS", "1")
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    monkeypatch.setenv("RANK", "3")
    isolation = Isolation(method=GUARD, guard_dir=tmp_path / "guard", namespace_note="test")
    spec = SeedSpec(folder=tmp_path, seed=7, nproc=1, device="cpu", out_dir=tmp_path / "out",
                    scratch_dir=tmp_path / "scratch", isolation=isolation, timeout_s=10, python=sys.executable)
    env, _ = child_environment(spec, "marker", tmp_path / "net.log", tmp_path / "cache")
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert paths[0] == str(tmp_path / "guard")  # the network guard always comes first
    assert paths[-2:] == ["/opt/deps", "/opt/more"]  # dependencies installed there stay importable
    assert env["NVSHMEM_DISABLE_NVLS"] == "1" and env["NCCL_NVLS_ENABLE"] == "0"
    assert "GITHUB_TOKEN" not in env and "RANK" not in env
    assert env["SEED"] == "7"

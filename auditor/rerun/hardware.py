"""What the rerun ran on, and GPU memory sampled from outside the run.

Everything here uses ``nvidia-smi`` (when it exists) rather than torch: creating a CUDA context
in the harness would hold memory on GPU 0 for the whole rerun and distort the measurement.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
from collections import Counter
from typing import Any

TARGET_DESCRIPTION = "8xH100 SXM"
TARGET_GPU_COUNT = 8
NVIDIA_SMI_TIMEOUT_S = 20


def nvidia_smi() -> str | None:
    return shutil.which("nvidia-smi")


def is_h100_sxm(name: str) -> bool:
    """The SXM H100 reports itself as "NVIDIA H100 80GB HBM3"; the PCIe and NVL parts say so."""
    upper = name.upper()
    if "H100" not in upper or "PCIE" in upper or "NVL" in upper:
        return False
    return "HBM3" in upper or "SXM" in upper


def _visible_filter(gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GPUs a child process can see under CUDA_VISIBLE_DEVICES (indices or UUIDs)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    chosen = []
    for token in wanted:
        for gpu in gpus:
            if token == str(gpu["index"]) or (token.startswith(("GPU-", "MIG-")) and gpu.get("uuid", "").startswith(token)):
                chosen.append(gpu)
                break
        else:
            break  # CUDA stops at the first entry it cannot match
    return chosen


def query_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """The visible GPUs (index, name, total memory, uuid) and the driver, or ([], None)."""
    exe = nvidia_smi()
    if exe is None:
        return [], None
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,uuid,driver_version",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return [], None
    if out.returncode != 0:
        return [], None
    gpus, driver = [], None
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        memory = int(parts[2]) if parts[2].isdigit() else None
        gpus.append({"index": int(parts[0]), "name": parts[1], "memory_total_mib": memory, "uuid": parts[3]})
        driver = parts[4]
    return _visible_filter(gpus), driver


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_hardware(device: str, nproc: int) -> dict[str, Any]:
    """The machine as the rerun section reports it, with whether it is the challenge's target."""
    gpus, driver = query_gpus() if device == "cuda" else ([], None)
    names = [g["name"] for g in gpus]
    model = Counter(names).most_common(1)[0][0] if names else None
    used = min(nproc, len(gpus)) if device == "cuda" else 0
    matches = (device == "cuda" and nproc == TARGET_GPU_COUNT and len(gpus) >= TARGET_GPU_COUNT
               and all(is_h100_sxm(n) for n in names[:TARGET_GPU_COUNT]))
    if device == "cuda":
        description = f"{used}x {model}" if model else f"{nproc} process(es) on CUDA (GPU model unknown: no nvidia-smi)"
    else:
        description = f"CPU ({cpu_model()}), {nproc} process(es)"
    return {
        "device": device,
        "nproc": nproc,
        "gpu_model": model,
        "gpu_count": len(gpus),
        "gpus_used": used,
        "gpus": gpus,
        "driver": driver,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "target": TARGET_DESCRIPTION,
        "matches_target": matches,
        "description": description,
    }


class GpuMemorySampler:
    """Peak ``memory.used`` per GPU, from ``nvidia-smi --query-gpu=index,memory.used`` run every
    ``interval_s`` by a background thread (one short query each time: simpler and sturdier across
    driver versions than nvidia-smi's own loop mode).

    ``memory.used`` counts every process on the GPU, so the baseline before launch is kept too;
    the peak minus the baseline is what the run added.
    """

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.peak_mib: dict[int, int] = {}
        self.baseline_mib: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_once(self) -> dict[int, int]:
        exe = nvidia_smi()
        if exe is None:
            return {}
        try:
            out = subprocess.run([exe, "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return {}
        return self._parse(out.stdout)

    def _parse(self, text: str) -> dict[int, int]:
        values = {}
        for line in text.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                values[int(parts[0])] = int(parts[1])
        return values

    def _record(self, values: dict[int, int]) -> None:
        for index, used in values.items():
            self.samples += 1
            if used > self.peak_mib.get(index, -1):
                self.peak_mib[index] = used

    def start(self) -> bool:
        if nvidia_smi() is None:
            return False
        self.baseline_mib = self._read_once()
        self._thread = threading.Thread(target=self._poll, name="gpu-memory", daemon=True)
        self._thread.start()
        return True

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._record(self._read_once())
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=NVIDIA_SMI_TIMEOUT_S + 5)

    def result(self) -> dict[str, Any]:
        if not self.peak_mib:
            return {"peak_gpu_memory_mib": None, "gpu_memory_baseline_mib": None, "gpu_memory_samples": self.samples}
        peak_index = max(self.peak_mib, key=lambda i: self.peak_mib[i])
        return {
            "peak_gpu_memory_mib": self.peak_mib[peak_index],
            "peak_gpu_memory_added_mib": self.peak_mib[peak_index] - self.baseline_mib.get(peak_index, 0),
            "gpu_memory_baseline_mib": self.baseline_mib.get(peak_index),
            "peak_gpu_memory_per_gpu_mib": {str(i): v for i, v in sorted(self.peak_mib.items())},
            "gpu_memory_samples": self.samples,
        }

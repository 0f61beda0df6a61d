"""PG408 hardware-mismatch."""

from __future__ import annotations

import re

from pgolf_audit.checkutil import run_name
from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rulebase import RECORD_TRACK, Check, FolderCase, SkipCheck

OTHER_GPU = re.compile(r"\b(A100|A10G?|L4|L40S?|L20Z?|V100|T4|B200|GB200|H200|RTX\s?\d{4}|MI\d{3}|1x\s?H100|4x\s?H100|H100\s?NVL|H100\s?PCIe)\b", re.I)


class HardwareMismatch(Check):
    """A record-track run did not run on 8xH100 SXM.

    What it checks:
        For record-track folders: the world size each log prints (must equal the track's
        `world_size`, 8), the GPU model in nvidia-smi rows or launch lines (must match the
        track's `gpu_pattern`, H100), and submission.json's `hardware`/`gpu`/`platform` text.
        When no log evidences the hardware at all, that is noted (info).

    Why it breaks the rules:
        R-HW-8xH100-SXM: record runs are on 8xH100 SXM; other hardware goes to the non-record
        track or must be re-run (#2125). `2026-03-17_LoRA_TTT/train_v1.txt` ran with
        world_size 2 for 40 minutes.

    Example:
        `world_size:2 grad_accum_steps:4` in a record-track log; `"hardware": "1xH100"`.

    Legal alternative:
        Rerun on 8xH100 SXM, or submit to `track_non_record_16mb`.

    Known limitations:
        The SXM form factor is only visible when the log or the claim names it; `H100 80GB
        HBM3` (the SXM part) is accepted as H100.
    """

    CODE = "PG408"
    NAME = "hardware-mismatch"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.ERROR
    TRACKS = (RECORD_TRACK,)
    REFERENCES = ("R-HW-8xH100-SXM",)

    VALID = [FolderCase("8 ranks of H100 80GB HBM3")]
    INVALID = [
        FolderCase("two ranks", edits={"train_seed42.log": [(r"world_size:8 ", "world_size:2 ")]},
                   message_contains=("world size 2",)),
        FolderCase("A100 in nvidia-smi", edits={"train_seed1337.log": [(r"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB")]},
                   message_contains=("A100",)),
        FolderCase("claimed hardware is a single GPU", json={"hardware": "1xH100 80GB"}, severity=Severity.WARNING,
                   message_contains=("1xH100",)),
    ]

    def run(self, ctx):
        limits = ctx.limits
        runs = ctx.scored_runs
        if not runs:
            raise SkipCheck("no scored run")
        evidenced = False
        for run in runs:
            rec = run.record
            if rec.world_size is not None:
                evidenced = True
                if limits.world_size and rec.world_size != limits.world_size:
                    yield self.finding(f"{run_name(run)} ran with world size {rec.world_size}; record runs use "
                                       f"{limits.hardware}", location=run.at(None),
                                       values={"world_size": rec.world_size, "required": limits.world_size})
            if rec.gpu:
                evidenced = True
                if limits.gpu_pattern and limits.gpu_pattern.lower() not in rec.gpu.lower():
                    yield self.finding(f"{run_name(run)} ran on {rec.gpu}; record runs use {limits.hardware}",
                                       location=run.at(None), values={"gpu": rec.gpu})
        claims = ctx.submission
        if claims:
            for key in ("hardware", "gpu", "platform"):
                text = claims.raw.get(key) if isinstance(claims.raw, dict) else None
                if isinstance(text, str) and OTHER_GPU.search(text):
                    yield self.finding(f"submission.json {key} says {text!r}; record runs use {limits.hardware}",
                                       location=Location(claims.path, json_path=key), severity=Severity.WARNING)
        if not evidenced:
            yield self.finding("no log prints the world size or GPU model; the hardware is unverified",
                               severity=Severity.INFO)

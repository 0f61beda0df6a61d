"""``RerunResult``: what ``pgolf-audit rerun`` measured, as a typed object.

The runner builds it, the PG8xx checks and ``compare`` read its fields, and ``to_json`` gives
the ``rerun`` section of the audit JSON (and ``OUT/rerun.json``), whose shape is
``schema.RERUN_SCHEMA``: one field per key, in the order the section lists them. The sections
below the top level (``hardware``, ``claims``, each entry of ``runs``, ``summary``, …) stay
JSON-ready dicts; their keys are the schema's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from . import RERUN_SCHEMA_VERSION


@dataclass
class RerunResult:
    folder: str                                  # the record folder as the user named it
    command: str                                 # the launch command, as a maintainer would type it
    nproc: int
    device: str                                  # "cuda" or "cpu"
    out_dir: str                                 # the folder with the logs and measurements
    schema_version: str = RERUN_SCHEMA_VERSION
    launcher: list[str] | None = None            # the argv actually launched (torchrun through the interpreter)
    seeds: list[int] = field(default_factory=list)
    timeout_seconds: float | None = None         # per seed
    timeout: dict[str, Any] | None = None        # {"seconds", "source", "formula", ...}
    env: dict[str, str] = field(default_factory=dict)       # the first seed's configured variables
    config: dict[str, Any] = field(default_factory=dict)    # per-seed configuration, overrides, data paths
    started_at: str | None = None
    finished_at: str | None = None
    harness_python: str | None = None
    software: dict[str, Any] | None = None       # the child's Python, torch and CUDA
    hardware: dict[str, Any] = field(default_factory=dict)
    isolation: dict[str, Any] | None = None
    shim: dict[str, Any] = field(default_factory=lambda: {"flash_attn": False})
    calibration: dict[str, Any] | None = None
    claims: dict[str, Any] = field(default_factory=dict)    # claimed val_bpb, per-seed claims
    code: dict[str, Any] = field(default_factory=dict)      # counted code bytes
    limits: dict[str, Any] = field(default_factory=dict)    # the track's limits
    runs: list[dict[str, Any]] = field(default_factory=list)  # one entry per seed (schema.RUN_SCHEMA)
    summary: dict[str, Any] | None = None        # compare.summarize over the runs
    infrastructure_error: str | None = None      # why the rerun could not run at all

    # The section's key order (JSON and rerun.json): as the reader meets them.
    KEY_ORDER = ("schema_version", "folder", "command", "launcher", "nproc", "device", "seeds", "timeout_seconds",
                 "timeout", "out_dir", "env", "config", "started_at", "finished_at", "harness_python", "software",
                 "hardware", "isolation", "shim", "calibration", "claims", "code", "limits", "runs", "summary",
                 "infrastructure_error")

    def to_json(self) -> dict[str, Any]:
        """The ``rerun`` section of the audit JSON."""
        return {key: getattr(self, key) for key in self.KEY_ORDER}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RerunResult:
        """A section read back (``rerun.json``, the audit JSON's ``rerun``); keys it does not know
        are an error, so a section from a newer version is not half read."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"rerun section: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


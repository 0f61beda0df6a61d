"""JSON Schema of the ``rerun`` section (schema_version "1"), for validators and the tests.

The audit JSON's own schema (``reports/audit.schema.json``) admits any object under ``rerun``;
this is the shape ``pgolf-audit rerun`` writes there. Times are seconds since the seed's launch
(``*_seconds``) or durations; bytes are integers; anything not measured is null.
"""

from __future__ import annotations

NUMBER = {"type": ["number", "null"]}
INTEGER = {"type": ["integer", "null"]}
STRING = {"type": ["string", "null"]}
BOOLEAN = {"type": ["boolean", "null"]}

RUN_SCHEMA = {
    "type": "object",
    "required": ["seed", "status", "problems", "exit_code", "timed_out", "wall_seconds", "train_seconds",
                 "reported_train_seconds", "eval_seconds", "artifact_bytes", "val_bpb", "claimed_val_bpb",
                 "log_path"],
    "properties": {
        "seed": {"type": "integer"},
        "status": {"enum": ["ok", "timeout", "crashed", "no_output", "no_metric", "no_artifact", "network_attempt",
                            "launch_failed"]},
        "problems": {"type": "array", "items": {"type": "string"}},
        "exit_code": INTEGER,
        "timed_out": {"type": "boolean"},
        "wall_seconds": NUMBER,
        "startup_seconds": NUMBER,
        "compile_warmup_seconds": NUMBER,
        "quantization_seconds": NUMBER,
        "hyperparameters": {"type": "object", "additionalProperties": {"type": "string"}},
        "config_diff": {"type": "object", "required": ["status"],
                        "properties": {"status": {"enum": ["same", "differs", "unavailable"]},
                                       "requested": {"type": "array"}, "explained": {"type": "array"},
                                       "unrequested": {"type": "array"}}},
        "train_seconds": NUMBER,
        "train_loop_seconds": NUMBER,
        "train_end_source": {"enum": ["stop line", "artifact written", None]},
        "reported_train_seconds": NUMBER,
        "artifact_seconds": NUMBER,
        "final_metric_seconds": NUMBER,
        "eval_seconds": NUMBER,
        "reported_eval_seconds": NUMBER,
        "artifact_path": STRING,
        "artifact_file_bytes": INTEGER,
        "code_bytes": INTEGER,
        "artifact_bytes": INTEGER,
        "reported_artifact_bytes": INTEGER,
        "val_bpb": NUMBER,
        "val_loss": NUMBER,
        "claimed_val_bpb": NUMBER,
        "delta_val_bpb": NUMBER,
        "within_claimed_spread": BOOLEAN,
        "steps": INTEGER,
        "claimed_steps": INTEGER,
        "peak_gpu_memory_mib": INTEGER,
        "peak_rss_mib": NUMBER,
        "network_attempts": {"type": "array", "items": {"type": "object"}},
        "leftover_processes": INTEGER,
        "lines": INTEGER,
        "script_lines": INTEGER,
        "log_path": {"type": "string"},
        "timed_log_path": {"type": "string"},
        "log_tail": STRING,
    },
}

RERUN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pgolf-audit rerun section",
    "type": "object",
    "required": ["schema_version", "command", "nproc", "device", "seeds", "hardware", "isolation", "shim",
                 "calibration", "claims", "runs", "summary", "infrastructure_error", "out_dir"],
    "properties": {
        "schema_version": {"const": "1"},
        "command": {"type": "string"},
        "nproc": {"type": "integer", "minimum": 1},
        "device": {"enum": ["cuda", "cpu"]},
        "seeds": {"type": "array", "items": {"type": "integer"}},
        "timeout_seconds": {"type": "number"},
        "timeout": {"type": ["object", "null"], "properties": {"seconds": {"type": "number"},
                                                                "source": {"enum": ["derived", "--timeout"]},
                                                                "formula": {"type": "string"}}},
        "config": {"type": "object", "properties": {"seeds": {"type": "object"}, "overrides": {"type": "object"},
                                                    "script_reads": {"type": "array"}, "data_root": STRING}},
        "out_dir": {"type": "string"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "hardware": {"type": "object", "required": ["device", "matches_target", "description"],
                     "properties": {"gpu_model": STRING, "gpu_count": {"type": "integer"},
                                    "matches_target": {"type": "boolean"}, "description": {"type": "string"}}},
        "isolation": {"type": ["object", "null"],
                      "properties": {"method": {"enum": ["network-namespace", "socket-guard"]}}},
        "shim": {"type": "object", "required": ["flash_attn"], "properties": {"flash_attn": {"type": "boolean"}}},
        "calibration": {"type": ["object", "null"],
                        "properties": {"speed_factor": NUMBER, "ms_per_step": NUMBER, "profile": {"type": "string"}}},
        "claims": {"type": "object", "properties": {"val_bpb": NUMBER, "seeds": {"type": "object"}}},
        "runs": {"type": "array", "items": RUN_SCHEMA},
        "summary": {"type": ["object", "null"],
                    "properties": {"val_bpb_mean": NUMBER, "claimed_val_bpb_mean": NUMBER, "delta_val_bpb_mean": NUMBER,
                                   "within_claimed_spread": BOOLEAN, "speed_factor": NUMBER,
                                   "comparable": {"type": "object"}}},
        "infrastructure_error": STRING,
    },
}

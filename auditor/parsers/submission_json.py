"""Read a record's submission.json into normalised claims.

Submissions use many spellings for the same concept (39 distinct key sets in the records
corpus, see ``docs/log_formats.md`` §5). This module maps each alias to one field, records which
key each value came from (``key_used``), keeps unknown keys (reported, never fatal) and lists
data-quality problems in plain words. It does not judge compliance: comparing the claims with the
logs and the limits is the job of the rules.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

TRACK_10MIN = "track_10min_16mb"
TRACK_NON_RECORD = "track_non_record_16mb"

# concept -> keys that carry it, in order of preference
_SCORE_KEYS = ("val_bpb", "mean_val_bpb", "mean_bpb")
_LOSS_KEYS = ("val_loss", "mean_val_loss", "val_loss_nats", "mean_val_loss_nats")
_BPB_STD_KEYS = ("val_bpb_std", "std_bpb")
# The cap applies to every seed, so the maximum wins over totals, and totals over means.
_ARTIFACT_KEYS = ("artifact_bytes_max", "bytes_total", "artifact_bytes", "artifact_size_bytes", "artifact_bytes_mean")
_CODE_KEYS = ("bytes_code", "code_bytes")
_MODEL_KEY_PATTERN = re.compile(r"^bytes_model(?:_\w+)?$")
_TRAIN_SECONDS_KEYS = ("wallclock_seconds", "train_time_seconds", "train_time_s_mean", "train_time_s")
_TRAIN_MS_KEYS = ("train_time_ms",)
_EVAL_SECONDS_KEYS = ("eval_time_seconds", "eval_time_s_mean", "eval_time_s")
_EVAL_MS_KEYS = ("eval_time_ms",)
_STEPS_KEYS = ("step_stop", "train_steps", "train_steps_mean", "steps")
_HARDWARE_KEYS = ("hardware", "gpu", "platform")
_NAME_KEYS = ("name", "run_name")

# Per-seed entries (seed_results.<seed>, seeds.<seed>, compliance_rerun.seed_results.<seed>).
_SEED_BPB_KEYS = ("val_bpb", "post_ttt_val_bpb", "val_var_bpb")
_SEED_LOSS_KEYS = ("val_loss", "val_loss_nats", "post_ttt_val_loss")
_SEED_BYTES_KEYS = ("artifact_bytes", "bytes_total", "artifact_size_bytes")
_SEED_STEPS_KEYS = ("steps", "step_stop", "train_steps")
_SEED_TRAIN_S_KEYS = ("train_time_s", "train_time_seconds")
_SEED_TRAIN_MS_KEYS = ("train_time_ms",)
_SEED_EVAL_S_KEYS = ("eval_time_s", "eval_time_seconds", "ttt_eval_time_s")
_SEED_EVAL_MS_KEYS = ("eval_time_ms", "ttt_time_ms", "post_ttt_eval_time_ms")

# Every top-level key seen in the records corpus plus the optional fields the maintainers use;
# anything else is listed in unknown_keys.
KNOWN_KEYS = frozenset({
    "adam_weight_decay", "architecture", "artifact_bytes", "artifact_bytes_max", "artifact_bytes_mean",
    "artifact_size_bytes", "attribution", "author", "base_pr", "base_submission", "base_val_bpb", "based_on",
    "best_10min_byte260_bytes_total", "best_10min_byte260_val_bpb", "best_10min_sp1024_bytes_total",
    "best_10min_sp1024_val_bpb", "blurb", "bytes_code", "bytes_model_compressed", "bytes_model_int6_zstd",
    "bytes_model_int8_zlib", "bytes_total", "calibration", "code_bytes", "comparison_baseline_bpb",
    "comparison_baseline_pr", "compliance", "compliance_rerun", "compression", "context_length", "cuda_version",
    "date", "delta_vs_base_bpb", "delta_vs_base_loss_nats", "delta_vs_current_merged_sota_bpb",
    "delta_vs_current_merged_sota_nats", "delta_vs_leaderboard_bpb", "delta_vs_leaderboard_nats",
    "delta_vs_pr1019_bpb", "delta_vs_pr1179_bpb", "delta_vs_pr1179_nats", "delta_vs_pr549_bpb",
    "delta_vs_pr549_nats", "eval_full_val_verified", "eval_method", "eval_stride", "eval_time_s",
    "eval_time_s_mean", "eval_time_seconds", "eval_time_ms", "flash_attn_version", "fp16_embed_export",
    "github_id", "gpu", "hardware", "implementation_lineage_pr", "int6_layer_end", "int6_layer_start",
    "int6_layers", "int6_zstd_val_bpb", "int6_zstd_val_loss", "matrix_lr", "mean_bpb", "mean_val_bpb",
    "mean_val_loss", "mean_val_loss_nats", "merged_sota_reference", "mlp_mult", "model_dim", "model_params",
    "muon_momentum", "muon_weight_decay", "n_seeds", "name", "negative_results_pr", "non_record_reason",
    "notes", "num_heads", "num_kv_heads", "num_layers", "our_contribution", "p_value", "platform",
    "post_ema_mean_bpb", "post_quant_standard_val_bpb", "post_quant_standard_val_loss", "pre_quant_val_bpb",
    "pre_quant_val_loss", "pre_ttt_sliding_mean", "pytorch_version", "qat_enabled", "qat_int6",
    "quant_roundtrip_mean_bpb", "quantization", "quantization_gap_bpb", "rank", "reproducibility_notes",
    "run_name", "scalar_lr", "seed", "seed_results", "seed_results_all_runs_disclosure", "seed_results_pre_fix",
    "seed_scores", "seeds", "seq_len", "sliding_bpb_mean", "sliding_val_bpb", "status", "std_bpb",
    "std_val_loss_nats", "step_avg_ms", "step_avg_ms_mean", "step_stop", "submission_type", "supports_pr",
    "t_statistic", "technique_summary", "techniques", "tie_embeddings", "tied_embed_lr", "tokenizer", "track",
    "train_seq_len", "train_steps", "train_steps_mean", "train_time_ms", "train_time_s", "train_time_s_mean",
    "train_time_seconds", "ttt_gain_mean_bpb", "use_zstd", "val_bpb", "val_bpb_method", "val_bpb_retracted",
    "val_bpb_roundtrip", "val_bpb_std", "val_loss", "val_loss_nats", "val_loss_nats_std", "val_loss_roundtrip",
    "val_loss_sliding", "val_loss_std", "vocab_size", "wallclock_seconds", "welch_df", "zstd_level",
})

# Concepts a complete submission states; absent or empty ones are listed in ``missing``.
EXPECTED_CONCEPTS = ("name", "author", "github_id", "date", "track", "val_bpb", "val_loss", "artifact_bytes", "seeds")

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_MAX_INT_DIGITS = 30  # seeds and byte counts have at most 20 digits
_MAX_NESTING = 200  # json.loads recursion is bounded by the interpreter; refuse deeper input clearly


class SubmissionJsonError(Exception):
    """The file cannot be read as a JSON object (empty, not UTF-8, not JSON, not an object)."""


@dataclass
class SeedClaim:
    seed: int | str
    json_path: str
    val_bpb: float | None
    val_loss: float | None
    artifact_bytes: int | None
    steps: int | None
    train_time_s: float | None
    eval_time_s: float | None
    raw: dict
    # added field
    key_used: dict[str, str] = field(default_factory=dict)  # concept -> key inside the seed entry


@dataclass
class SubmissionClaims:
    path: str
    raw: dict
    name: str | None = None
    author: str | None = None
    github_id: str | None = None
    date: str | None = None
    track: str | None = None
    track_raw: str | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    val_bpb_std: float | None = None
    artifact_bytes: int | None = None
    code_bytes: int | None = None
    model_bytes: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    steps: int | None = None
    seeds: list[int | str] = field(default_factory=list)
    seed_claims: list[SeedClaim] = field(default_factory=list)
    compliance: dict = field(default_factory=dict)
    hardware: str | None = None
    p_value: float | None = None
    t_statistic: float | None = None
    key_used: dict[str, str] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # added fields
    date_iso: str | None = None  # YYYY-MM-DD part of date, when it parses
    artifact_bytes_mean: int | None = None  # artifact_bytes_mean, when given next to a max or total
    pre_quant_val_bpb: float | None = None
    eval_seconds_list: list[float] = field(default_factory=list)  # eval_time_seconds given as a list
    rerun_seed_claims: list[SeedClaim] = field(default_factory=list)  # compliance_rerun.seed_results
    disclosed_seed_bpb: dict[int | str, float] = field(default_factory=dict)  # all-runs disclosure blocks
    submission_type: str | None = None  # e.g. "record_support"


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _nesting_depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _load_object(data: bytes | str, path: str, problems: list[str]) -> dict:
    if isinstance(data, str):
        text = data
    else:
        if not data:
            raise SubmissionJsonError(f"{path}: empty file")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SubmissionJsonError(f"{path}: not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
        problems.append("file starts with a UTF-8 byte-order mark")
    if not text.strip():
        raise SubmissionJsonError(f"{path}: empty file")
    if _nesting_depth_exceeds(text, _MAX_NESTING):
        raise SubmissionJsonError(f"{path}: JSON nested more than {_MAX_NESTING} levels deep")

    duplicates: list[str] = []
    special: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
        obj: dict = {}
        for key, value in pairs:
            if key in obj:
                duplicates.append(key)
            obj[key] = value
        return obj

    def constant_hook(name: str) -> float:
        special.append(name)
        return float("nan") if name == "NaN" else float(name.replace("Infinity", "inf"))

    def int_hook(digits: str) -> int:
        # int() of thousands of digits is slow or refused (ValueError) by the interpreter
        if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
            raise SubmissionJsonError(f"{path}: an integer with {len(digits.lstrip('-')):,} digits "
                                      f"(more than {_MAX_INT_DIGITS}); not a plausible value")
        return int(digits)

    try:
        obj = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=constant_hook, parse_int=int_hook)
    except json.JSONDecodeError as exc:
        raise SubmissionJsonError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise SubmissionJsonError(f"{path}: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise SubmissionJsonError(f"{path}: the top level is a JSON {type(obj).__name__}, not an object")
    for key in dict.fromkeys(duplicates):
        problems.append(f"duplicate key {key!r} (the last value is used)")
    for name in dict.fromkeys(special):
        problems.append(f"non-standard JSON constant {name} used")
    return obj


# ---------------------------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------------------------


def _number(value: Any, where: str, problems: list[str]) -> float | None:
    """A finite number, also from a numeric string (reported); None for anything else."""
    if isinstance(value, bool) or value is None:
        if isinstance(value, bool):
            problems.append(f"{where} is a boolean, not a number")
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where} is {value}, not a finite number")
            return None
        return float(value)
    if isinstance(value, str):
        cleaned = value.strip().replace(",", "").replace("_", "")
        try:
            number = float(cleaned)
        except ValueError:
            problems.append(f"{where} is the text {value!r}, not a number")
            return None
        if math.isfinite(number):
            problems.append(f"{where} is the text {value!r}; read as {number:g}")
            return number
        problems.append(f"{where} is {value!r}, not a finite number")
        return None
    problems.append(f"{where} is a JSON {type(value).__name__}, not a number")
    return None


def _integer(value: Any, where: str, problems: list[str]) -> int | None:
    number = _number(value, where, problems)
    if number is None:
        return None
    if number != int(number):
        problems.append(f"{where} {number:g} is not a whole number")
    return int(round(number))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return str(value)


def _seed_key(key: Any) -> int | str:
    if isinstance(key, bool):
        return str(key)
    if isinstance(key, int):
        return key
    text = str(key).strip()
    return int(text) if re.fullmatch(r"-?\d{1,12}", text) else text


def _looks_rounded(n: int) -> bool:
    return n >= 10_000 and n % 1000 == 0


def normalise_track(value: str) -> str | None:
    """'10min_16mb', 'non-record-16mb', 'track_non_record_16mb', ... -> the records folder name."""
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    key = key.removeprefix("records/").removeprefix("track_")
    if key in ("10min_16mb", "10_min_16mb", "10min", "record", "record_16mb"):
        return TRACK_10MIN
    if key.startswith("non_record") or key.startswith("nonrecord") or key.startswith("unlimited"):
        return TRACK_NON_RECORD
    return None


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _first_key(raw: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in raw and raw[key] is not None and raw[key] != "":
            return key
    return None


def _seed_claim(seed: int | str, path: str, entry: Any, problems: list[str]) -> SeedClaim:
    if not isinstance(entry, dict):
        value = _number(entry, path, problems)
        return SeedClaim(seed, path, value, None, None, None, None, None, {"value": entry},
                         {"val_bpb": path} if value is not None else {})
    used: dict[str, str] = {}

    def pick(concept: str, keys: tuple[str, ...], scale: float = 1.0) -> float | None:
        key = _first_key(entry, keys)
        if key is None:
            return None
        value = _number(entry[key], f"{path}.{key}", problems)
        if value is not None:
            used[concept] = key
            return value * scale
        return None

    val_bpb = pick("val_bpb", _SEED_BPB_KEYS)
    if used.get("val_bpb") == "val_var_bpb":
        problems.append(f"{path} gives val_var_bpb (a variational bound), read as its val_bpb")
    train_s = pick("train_time_s", _SEED_TRAIN_S_KEYS)
    if train_s is None:
        train_s = pick("train_time_s", _SEED_TRAIN_MS_KEYS, 0.001)
    eval_s = pick("eval_time_s", _SEED_EVAL_S_KEYS)
    if eval_s is None:
        eval_s = pick("eval_time_s", _SEED_EVAL_MS_KEYS, 0.001)
    artifact = pick("artifact_bytes", _SEED_BYTES_KEYS)
    steps = pick("steps", _SEED_STEPS_KEYS)
    return SeedClaim(
        seed=seed, json_path=path, val_bpb=val_bpb, val_loss=pick("val_loss", _SEED_LOSS_KEYS),
        artifact_bytes=int(round(artifact)) if artifact is not None else None,
        steps=int(round(steps)) if steps is not None else None,
        train_time_s=train_s, eval_time_s=eval_s, raw=entry, key_used=used)


def _seed_dict_claims(block: dict, prefix: str, problems: list[str]) -> list[SeedClaim]:
    return [_seed_claim(_seed_key(key), f"{prefix}.{key}", entry, problems) for key, entry in block.items()]


def _read_seeds(raw: dict, claims: SubmissionClaims) -> None:
    problems = claims.problems
    seeds_value = raw.get("seeds")
    results = raw.get("seed_results")

    if isinstance(seeds_value, list):
        claims.seeds = [_seed_key(s) for s in seeds_value]
        claims.key_used["seeds"] = "seeds"
    elif isinstance(seeds_value, dict):
        # dexhunter style: seeds keyed by seed, each with its own results
        claims.seeds = [_seed_key(k) for k in seeds_value]
        claims.key_used["seeds"] = "seeds (keys)"
        claims.seed_claims.extend(_seed_dict_claims(seeds_value, "seeds", problems))
    elif seeds_value is not None:
        claims.seeds = [_seed_key(seeds_value)]
        claims.key_used["seeds"] = "seeds"
        problems.append("seeds is a single value, not a list")

    if isinstance(results, dict):
        claims.seed_claims.extend(_seed_dict_claims(results, "seed_results", problems))
        if not claims.seeds:
            claims.seeds = [_seed_key(k) for k in results]
            claims.key_used["seeds"] = "seed_results (keys)"
    elif isinstance(results, list):
        for i, entry in enumerate(results):
            seed = entry.get("seed") if isinstance(entry, dict) else None
            claims.seed_claims.append(_seed_claim(_seed_key(seed) if seed is not None else i,
                                                  f"seed_results[{i}]", entry, problems))
        if not claims.seeds:
            claims.seeds = [c.seed for c in claims.seed_claims]
            claims.key_used["seeds"] = "seed_results (entries)"
    elif results is not None:
        problems.append(f"seed_results is a JSON {type(results).__name__}, not an object")

    scores = raw.get("seed_scores")
    if isinstance(scores, list):
        if isinstance(seeds_value, list) and len(seeds_value) == len(scores):
            for i, (seed, score) in enumerate(zip(claims.seeds, scores)):
                claims.seed_claims.append(_seed_claim(seed, f"seed_scores[{i}]", score, problems))
        else:
            problems.append("seed_scores does not line up with a seeds list of the same length")

    if not claims.seeds and "seed" in raw and raw["seed"] is not None:
        claims.seeds = [_seed_key(raw["seed"])]
        claims.key_used["seeds"] = "seed"

    rerun = raw.get("compliance_rerun")
    if isinstance(rerun, dict) and isinstance(rerun.get("seed_results"), dict):
        claims.rerun_seed_claims = _seed_dict_claims(rerun["seed_results"], "compliance_rerun.seed_results", problems)

    for key, block in raw.items():
        if ("disclosure" in key or "all_runs" in key) and isinstance(block, dict):
            for inner_key, inner in block.items():
                if "bpb" in inner_key and isinstance(inner, dict):
                    for seed, value in inner.items():
                        number = _number(value, f"{key}.{inner_key}.{seed}", problems)
                        if number is not None:
                            claims.disclosed_seed_bpb[_seed_key(seed)] = number

    # consistency of the per-seed data with itself
    declared = list(dict.fromkeys(claims.seeds))
    if len(declared) != len(claims.seeds):
        problems.append("seeds lists the same seed more than once")
    claimed = [c.seed for c in claims.seed_claims]
    if claims.seed_claims and declared and set(claimed) != set(declared):
        problems.append(f"per-seed results cover seeds {sorted(map(str, set(claimed)))} but seeds lists "
                        f"{sorted(map(str, set(declared)))}")
    per_seed_bytes = [c.artifact_bytes for c in claims.seed_claims if c.artifact_bytes is not None]
    if len(per_seed_bytes) >= 2 and len(set(per_seed_bytes)) == 1:
        problems.append(f"every seed claims the same artifact_bytes {per_seed_bytes[0]} (copied rather than measured?)")
    for claim in claims.seed_claims:
        if claim.artifact_bytes is not None and _looks_rounded(claim.artifact_bytes):
            problems.append(f"{claim.json_path} artifact bytes {claim.artifact_bytes} looks rounded")


def parse_submission_json(data: bytes, path: str) -> SubmissionClaims:
    """Normalise one submission*.json. Raises SubmissionJsonError when it is not a JSON object."""
    problems: list[str] = []
    raw = _load_object(data, path, problems)
    claims = SubmissionClaims(path=path, raw=raw, problems=problems)
    used = claims.key_used

    def take_number(concept: str, keys: tuple[str, ...], scale: float = 1.0) -> float | None:
        key = _first_key(raw, keys)
        if key is None:
            return None
        value = raw[key]
        if isinstance(value, list):
            return None
        number = _number(value, key, problems)
        if number is not None:
            used[concept] = key
            return number * scale
        return None

    def take_int(concept: str, keys: tuple[str, ...]) -> int | None:
        number = take_number(concept, keys)
        if number is None:
            return None
        if number != int(number) and not used[concept].endswith("_mean"):
            problems.append(f"{used[concept]} {number:g} is not a whole number")
        return int(round(number))

    # identity
    for concept, keys in (("name", _NAME_KEYS), ("author", ("author",)), ("github_id", ("github_id",)),
                          ("date", ("date",)), ("hardware", _HARDWARE_KEYS)):
        key = _first_key(raw, keys)
        if key is not None:
            setattr(claims, concept, _text(raw[key]))
            used[concept] = key
    if claims.date is not None:
        m = _DATE.match(claims.date)
        if m:
            claims.date_iso = f"{m[1]}-{m[2]}-{m[3]}"
        else:
            problems.append(f"date {claims.date!r} is not YYYY-MM-DD or an ISO timestamp")
    claims.submission_type = _text(raw.get("submission_type"))

    track_value = raw.get("track")
    if track_value is not None:
        claims.track_raw = str(track_value)
        claims.track = normalise_track(str(track_value))
        used["track"] = "track"
        if claims.track is None:
            problems.append(f"unknown track {track_value!r}")

    # score
    claims.val_bpb = take_number("val_bpb", _SCORE_KEYS)
    claims.val_loss = take_number("val_loss", _LOSS_KEYS)
    claims.val_bpb_std = take_number("val_bpb_std", _BPB_STD_KEYS)
    claims.pre_quant_val_bpb = take_number("pre_quant_val_bpb", ("pre_quant_val_bpb",))
    if claims.val_bpb is not None:
        for alias in _SCORE_KEYS:
            if alias != used["val_bpb"] and alias in raw:
                other = _number(raw[alias], alias, [])
                if other is not None and abs(other - claims.val_bpb) > 1e-9:
                    problems.append(f"{used['val_bpb']} {claims.val_bpb:g} and {alias} {other:g} disagree")
    elif claims.val_loss is not None and 0.9 <= claims.val_loss <= 1.6:
        problems.append(f"val_bpb absent; {used['val_loss']} {claims.val_loss:g} looks like a bpb value")
    if claims.val_bpb is not None and claims.val_loss is not None and abs(claims.val_bpb - claims.val_loss) < 1e-12:
        problems.append("val_bpb and val_loss are the same number")

    # sizes (a mean is only used when nothing better is given, see below)
    claims.artifact_bytes = take_int("artifact_bytes", _ARTIFACT_KEYS[:-1])
    if "artifact_bytes_mean" in raw:
        mean_bytes = _number(raw["artifact_bytes_mean"], "artifact_bytes_mean", [])
        if mean_bytes is not None:
            claims.artifact_bytes_mean = int(round(mean_bytes))
    if used.get("artifact_bytes") == "artifact_bytes_max" and "bytes_total" in raw:
        total = _number(raw["bytes_total"], "bytes_total", [])
        if total is not None and claims.artifact_bytes is not None and total < claims.artifact_bytes:
            problems.append(f"bytes_total {int(total)} is below artifact_bytes_max {claims.artifact_bytes} "
                            "(a mean, not the largest artifact)")
    claims.code_bytes = take_int("code_bytes", _CODE_KEYS)
    model_keys = tuple(k for k in raw if _MODEL_KEY_PATTERN.match(k))
    claims.model_bytes = take_int("model_bytes", model_keys) if model_keys else None
    for concept in ("artifact_bytes", "code_bytes", "model_bytes"):
        value = getattr(claims, concept)
        if value is not None and _looks_rounded(value):
            problems.append(f"{used[concept]} {value} looks rounded")

    # time and steps
    claims.train_seconds = take_number("train_seconds", _TRAIN_SECONDS_KEYS)
    if claims.train_seconds is None:
        claims.train_seconds = take_number("train_seconds", _TRAIN_MS_KEYS, 0.001)
    eval_key = _first_key(raw, _EVAL_SECONDS_KEYS)
    if eval_key is not None and isinstance(raw[eval_key], list):
        values = [_number(v, f"{eval_key}[{i}]", problems) for i, v in enumerate(raw[eval_key])]
        claims.eval_seconds_list = [v for v in values if v is not None]
        if claims.eval_seconds_list:
            claims.eval_seconds = max(claims.eval_seconds_list)
            used["eval_seconds"] = f"{eval_key} (largest of the list)"
    else:
        claims.eval_seconds = take_number("eval_seconds", _EVAL_SECONDS_KEYS)
        if claims.eval_seconds is None:
            claims.eval_seconds = take_number("eval_seconds", _EVAL_MS_KEYS, 0.001)
    claims.steps = take_int("steps", _STEPS_KEYS)

    # statistics
    claims.t_statistic = take_number("t_statistic", ("t_statistic",))
    claims.p_value = take_number("p_value", ("p_value",))

    compliance = raw.get("compliance")
    if isinstance(compliance, dict):
        claims.compliance = compliance
        used["compliance"] = "compliance"
    elif compliance is not None:
        problems.append(f"compliance is a JSON {type(compliance).__name__}, not an object")

    _read_seeds(raw, claims)

    # The cap applies to the largest artifact: without a top-level max or total, take the largest
    # per-seed value, and only then a mean.
    per_seed = [c for c in claims.seed_claims if c.artifact_bytes is not None]
    largest = max(per_seed, key=lambda c: c.artifact_bytes or 0) if per_seed else None
    if claims.artifact_bytes is None and largest is not None:
        claims.artifact_bytes = largest.artifact_bytes
        used["artifact_bytes"] = f"largest per-seed value ({largest.json_path})"
    elif claims.artifact_bytes is None and claims.artifact_bytes_mean is not None:
        claims.artifact_bytes = claims.artifact_bytes_mean
        used["artifact_bytes"] = "artifact_bytes_mean"
        problems.append("only artifact_bytes_mean is given; the cap applies to the largest artifact")
    elif (claims.artifact_bytes is not None and largest is not None and largest.artifact_bytes is not None
          and claims.artifact_bytes < largest.artifact_bytes):
        problems.append(f"{used['artifact_bytes']} {claims.artifact_bytes} is below the largest per-seed artifact "
                        f"{largest.artifact_bytes} ({largest.json_path})")

    # the headline against the per-seed values, at the precision the headline is printed with
    # (JSON drops trailing zeros, and scores are never printed with fewer than 4 decimals)
    seed_bpbs = [c.val_bpb for c in claims.seed_claims if c.val_bpb is not None]
    if claims.val_bpb is not None and len(seed_bpbs) >= 2:
        seed_mean = mean(seed_bpbs)
        decimals = max(_printed_decimals(raw.get(used["val_bpb"])) or 0, 4)
        if abs(seed_mean - claims.val_bpb) > 0.5 * 10.0 ** (-decimals) + 1e-9:
            problems.append(f"{used['val_bpb']} {claims.val_bpb:g} is not the mean of the {len(seed_bpbs)} "
                            f"per-seed values ({seed_mean:.8f})")

    claims.unknown_keys = [k for k in raw if k not in KNOWN_KEYS]
    for concept in EXPECTED_CONCEPTS:
        value = claims.seeds if concept == "seeds" else getattr(claims, concept)
        if value is None or value == [] or value == "":
            claims.missing.append(concept)
    return claims


def _printed_decimals(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    text = repr(value)
    if "e" in text.lower():
        return None
    return len(text.split(".", 1)[1]) if "." in text else 0

"""The claimed-vs-measured tables of a folder result, built from the context.

Checks decide; this module only gathers the numbers a reviewer wants side by side, so the
renderers never reach back into logs or JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import CheckStatus, FolderResult

if TYPE_CHECKING:
    from .context import AuditContext, Run


def _seconds(ms: float | None) -> float | None:
    return round(ms / 1000.0, 3) if ms is not None else None


def headline_eval_seconds(run: "Run") -> float | None:
    h = run.headline
    if h is None or h.eval_time_ms is None:
        return None
    return round(h.eval_time_ms / 1000.0, 3)


def eval_passes_seconds(run: "Run") -> float | None:
    """All distinct eval passes of the run (a pass printed twice counts once)."""
    if not run.record.eval_passes_ms:
        return None
    return round(run.record.eval_time_distinct_ms / 1000.0, 3)


def train_plus_quant_seconds(run: "Run") -> float | None:
    t = run.record.train_time_ms
    if t is None:
        return None
    return round(t / 1000.0 + (run.record.quant_seconds or 0.0), 3)


def run_row(ctx: "AuditContext", run: "Run") -> dict[str, Any]:
    rec = run.record
    claim = seed_claim_for(ctx, run.seed)
    return {
        "log": run.path,
        "run_index": rec.index,
        "runs_in_log": len(run.log.runs),
        "superseded": run.superseded,
        "duplicate_of": run.duplicate_of,
        "seed": rec.seed,
        "seed_source": rec.seed_source,
        "headline_label": run.headline.label if run.headline else None,
        "headline_line": run.headline.line if run.headline else None,
        "val_bpb": run.headline.val_bpb if run.headline else None,
        "val_loss": run.headline.val_loss if run.headline else None,
        "claimed_val_bpb": claim.val_bpb if claim else None,
        "artifact_bytes": rec.total_bytes,
        "claimed_artifact_bytes": claim.artifact_bytes if claim else None,
        "code_bytes_logged": rec.code_bytes,
        "train_seconds": _seconds(rec.train_time_ms),
        "train_time_source": rec.train_time_source,
        "quant_seconds": rec.quant_seconds,
        "train_plus_quant_seconds": train_plus_quant_seconds(run),
        "eval_seconds": headline_eval_seconds(run),
        "eval_passes_seconds": eval_passes_seconds(run),
        "total_eval_seconds": rec.total_eval_time_s,
        "steps": rec.steps,
        "step_avg_ms": rec.step_avg_ms,
        "world_size": rec.world_size,
        "gpu": rec.gpu,
        "val_tokens": rec.val_tokens,
    }


def seed_claim_for(ctx: "AuditContext", seed: int | None):
    claims = ctx.submission
    if claims is None or seed is None:
        return None
    for c in claims.seed_claims:
        if str(c.seed) == str(seed):
            return c
    return None


def fill_tables(ctx: "AuditContext", result: FolderResult) -> None:
    claims = ctx.submission
    if claims is not None:
        result.claims = {
            "file": claims.path,
            "name": claims.name,
            "author": claims.author,
            "github_id": claims.github_id,
            "date": claims.date,
            "track": claims.track_raw,
            "val_bpb": claims.val_bpb,
            "val_bpb_key": claims.key_used.get("val_bpb"),
            "val_loss": claims.val_loss,
            "artifact_bytes": claims.artifact_bytes,
            "artifact_bytes_key": claims.key_used.get("artifact_bytes"),
            "code_bytes": claims.code_bytes,
            "seeds": list(claims.seeds),
            "seed_results": {str(c.seed): {"val_bpb": c.val_bpb, "val_loss": c.val_loss,
                                           "artifact_bytes": c.artifact_bytes} for c in claims.seed_claims},
            "compliance": claims.compliance,
        }
    if ctx.readme and ctx.readme.headline_bpb:
        result.claims["readme_val_bpb"] = ctx.readme.headline_bpb.value
        result.claims["readme_val_bpb_line"] = ctx.readme.headline_bpb.line

    result.runs = [run_row(ctx, r) for r in ctx.runs]
    scored = ctx.scored_runs
    sizes = [r.record.total_bytes for r in scored if r.record.total_bytes is not None]
    trains = [r.record.train_time_ms / 1000 for r in scored if r.record.train_time_ms is not None]
    evals = [e for e in (headline_eval_seconds(r) for r in scored) if e is not None]
    seeds = sorted({r.seed for r in scored if r.seed is not None})
    mean = ctx.run_mean_bpb(scored)
    result.measured = {
        "runs": len(scored),
        "distinct_seeds": seeds,
        "val_bpb_mean": round(mean, 8) if mean is not None else None,
        "artifact_bytes_max": max(sizes) if sizes else None,
        "train_seconds_max": round(max(trains), 3) if trains else None,
        "eval_seconds_max": round(max(evals), 3) if evals else None,
    }
    accounting = ctx.code_accounting if ctx.code is not None else None
    if ctx.code is not None:
        code = ctx.code
        result.code = {
            "entry": code.entry,
            "entry_bytes": code.entry_bytes,
            "origin": code.origin,
            "wrapped": code.wrapped,
            "wrapper": code.wrapper_name(),
            "layers": [{"file": l.file, "line": l.line, "codecs": list(l.codecs), "description": l.description}
                       for l in code.layers],
            "unwrapped_bytes": len(code.source.encode("utf-8")),
        }
        if accounting is not None:
            result.code["counted_files"] = [
                {"path": f.path, "bytes": f.bytes, "reason": f.reason} for f in accounting.files
            ]
            result.code["counted_bytes"] = accounting.total_bytes
            result.measured["counted_code_bytes"] = accounting.total_bytes
    elif ctx.code_error:
        result.code = {"error": ctx.code_error}
    result.limits = ctx.limits.to_json()
    result.stats = dict(ctx.significance.stats)
    result.not_checked = [
        f"{c.code} {c.name}: {c.reason}" for c in result.checks if c.status in (CheckStatus.INCOMPLETE, CheckStatus.ERROR)
    ]

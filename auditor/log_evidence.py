"""Evidence about evaluation-time techniques and claims that sits in the folder's data files.

The legality rules judge the code; the logs say which configuration actually ran (a PPM byte
mixture, a context mixer, an n-gram cache, SLOT, a score over a token subset), and
submission.json may state a non-record submission or sizes and times under keys the parser does
not know. ``log_config_facts`` and ``claim_facts`` gather these as facts (file, line, text); the
PG410 check reports them, and ``ctx.log_config`` holds them for any other rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import AuditContext

# (kind, pattern): one line of a log shows the technique configured on or running.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ppm", re.compile(r"^\s*ppm\w*enabled\s*[:=]\s*(?:true|1)\b|\[ppm_mix\]|^\s*cond_ppm\b|^\s*PPM alpha:", re.I)),
    ("mixer", re.compile(r"context mixer enabled|^\s*ngram_mixer\s*[:=]|^\s*\w*mixer\w*_enabled\s*[:=]\s*(?:true|1)\b", re.I)),
    ("ngram-cache", re.compile(r"^\s*(?:ngram_eval|ngram_single_pass|phrase_cache|slot_ngram|ngram_cache)\s*:", re.I)),
    ("slot", re.compile(r"^\s*(?:slot:starting|slot_sliding:start)\b", re.I)),
    ("subset", re.compile(r"(?:^|[\s_(\[])subset(?:_tokens)?\s*[:=]\s*([1-9]\d*)\b", re.I)),
)
KIND_TITLE = {
    "ppm": "a PPM byte mixture", "mixer": "a context mixer", "ngram-cache": "an n-gram cache",
    "slot": "SLOT", "subset": "a score over a token subset",
}
MAX_LINES_PER_KIND = 20


@dataclass(frozen=True)
class ConfigLine:
    kind: str
    path: str
    line: int
    text: str


def _in_dumps(line: int, dumps: list[tuple[int, int]]) -> bool:
    return any(a <= line <= b for a, b in dumps)


def log_config_facts(ctx: "AuditContext") -> dict[str, list[ConfigLine]]:
    """Lines of the training logs (outside source-code dumps) that show an evaluation-time
    technique configured or running, per kind: read once per audit (``ctx.log_config``)."""
    return ctx.log_config


def scan_log_config(ctx: "AuditContext") -> dict[str, list[ConfigLine]]:
    """The scan behind ``ctx.log_config``."""
    found: dict[str, list[ConfigLine]] = {}
    for log in ctx.logs:
        try:
            text = ctx.folder.read_text(log.path)[0]
        except Exception:  # an unreadable log is reported by the log checks
            continue
        dumps = list(getattr(log, "source_dumps", []) or [])
        for number, line in enumerate(text.splitlines(), 1):
            if len(line) > 2000 or _in_dumps(number, dumps):
                continue
            for kind, pattern in PATTERNS:
                if pattern.search(line):
                    bucket = found.setdefault(kind, [])
                    if len(bucket) < MAX_LINES_PER_KIND:
                        bucket.append(ConfigLine(kind, log.path, number, line.strip()))
    return found


SIZE_KEY = re.compile(r"(?:bytes|size)", re.I)
TIME_KEY = re.compile(r"(?:time|seconds|wallclock|_s$|_sec$)", re.I)


def claim_facts(ctx: "AuditContext") -> dict[str, Any]:
    """What submission.json says beyond its standard keys: ``non_record``, and numbers under
    keys the parser does not read that name a size (bytes) or a time (seconds)."""
    claims = ctx.submission
    raw = claims.raw if claims is not None and isinstance(claims.raw, dict) else {}
    unknown = set(getattr(claims, "unknown_keys", []) or [])
    sizes, times = {}, {}
    for key, value in raw.items():
        if key not in unknown or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if SIZE_KEY.search(key) and value >= 1_000_000:
            sizes[key] = value
        elif TIME_KEY.search(key) and "ms" not in key.lower():
            times[key] = value
    non_record = raw.get("non_record") is True or str(raw.get("record", "")).lower() == "false"
    return {"non_record": non_record, "sizes": sizes, "times": times}

"""Dated rulesets: track limits and policies as data (``rules/tracks/YYYY-MM-DD.toml``).

The ruleset in force for a submission is the newest one whose ``effective_from`` is on or
before the submission's date; ``--ruleset`` picks one explicitly.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

RULESET_FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.toml$")


class RulesetError(Exception):
    pass


@dataclass(frozen=True)
class Significance:
    readme_min_improvement_nats: float
    readme_p_max: float
    progression_p_max: float
    deciding_policy: str  # "readme" | "progression"


@dataclass(frozen=True)
class Policy:
    """How maintainers applied a requirement on the ruleset's date, with its rules-catalogue id."""

    min_seeds_severity: str = "error"       # "error" | "warning" | "info"
    min_seeds_source: str = "R-SIG-README"
    significance_source: str = "R-SIG-README"


@dataclass(frozen=True)
class TrackLimits:
    track: str
    title: str
    record: bool
    artifact_bytes_max: int
    train_seconds_max: float | None
    train_step_tolerance_max_seconds: float
    train_step_tolerance_steps: float
    eval_seconds_max: float | None
    min_seeds: int
    hardware: str | None
    world_size: int | None
    gpu_pattern: str | None
    significance: Significance | None
    policy: Policy = field(default_factory=Policy)

    def train_tolerance(self, step_seconds: float) -> float:
        """Seconds past ``train_seconds_max`` that the stop check after a step explains."""
        return min(self.train_step_tolerance_steps * step_seconds, self.train_step_tolerance_max_seconds)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("significance", "policy")}
        data["significance"] = dict(self.significance.__dict__) if self.significance else None
        data["policy"] = dict(self.policy.__dict__)
        return data


@dataclass(frozen=True)
class Ruleset:
    id: str
    effective_from: str
    title: str
    sources: tuple[str, ...]
    tracks: dict[str, TrackLimits] = field(hash=False)

    def limits(self, track: str) -> TrackLimits:
        try:
            return self.tracks[track]
        except KeyError:
            raise RulesetError(f"ruleset {self.id} has no track {track!r} (known: {', '.join(sorted(self.tracks))})") from None


def _track(name: str, data: dict[str, Any]) -> TrackLimits:
    sig = data.get("significance")
    return TrackLimits(
        track=name,
        title=data.get("title", name),
        record=bool(data.get("record", False)),
        artifact_bytes_max=int(data["artifact_bytes_max"]),
        train_seconds_max=data.get("train_seconds_max"),
        train_step_tolerance_max_seconds=float(data.get("train_step_tolerance_max_seconds", 0.0)),
        train_step_tolerance_steps=float(data.get("train_step_tolerance_steps", 1.0)),
        eval_seconds_max=data.get("eval_seconds_max"),
        min_seeds=int(data.get("min_seeds", 1)),
        hardware=data.get("hardware"),
        world_size=data.get("world_size"),
        gpu_pattern=data.get("gpu_pattern"),
        significance=Significance(**sig) if sig else None,
        policy=Policy(**data.get("policy", {})),
    )


@lru_cache(maxsize=None)
def available() -> dict[str, Ruleset]:
    folder = resources.files("pgolf_audit.rules").joinpath("tracks")
    rulesets: dict[str, Ruleset] = {}
    for entry in folder.iterdir():
        if not RULESET_FILE_RE.match(entry.name):
            continue
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            head = data["ruleset"]
            rs = Ruleset(
                id=head["id"],
                effective_from=head["effective_from"],
                title=head.get("title", ""),
                sources=tuple(head.get("sources", ())),
                tracks={name: _track(name, t) for name, t in data.get("tracks", {}).items()},
            )
        except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
            raise RulesetError(f"ruleset file {entry.name} is malformed: {exc}") from None
        rulesets[rs.id] = rs
    if not rulesets:
        raise RulesetError("no ruleset files found under rules/tracks")
    return rulesets


def get(ruleset_id: str) -> Ruleset:
    rulesets = available()
    if ruleset_id not in rulesets:
        raise RulesetError(f"unknown ruleset {ruleset_id!r} (known: {', '.join(sorted(rulesets))})")
    return rulesets[ruleset_id]


def for_date(date: str | None) -> Ruleset:
    """The newest ruleset in force on ``date`` (YYYY-MM-DD...); the newest overall when unknown."""
    ordered = sorted(available().values(), key=lambda r: r.effective_from)
    if date and re.match(r"^\d{4}-\d{2}-\d{2}", date):
        day = date[:10]
        eligible = [r for r in ordered if r.effective_from <= day]
        if eligible:
            return eligible[-1]
        return ordered[0]
    return ordered[-1]

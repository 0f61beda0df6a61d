"""From a rule's hit to a finding: where it is, and how severe given the logged runs.

``to_finding`` is the engine's severity policy. The code path of a hit is checked against the
feature flags the logged runs used (``gating``), and against lines only that path prints in
the logs (``printed``); the rule's ruling and the submission's date then decide whether an
error stands (``apply_ruling``). ``one_per_place`` keeps one finding per reported place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import Finding, Location, Severity
from .api import Hit, Ruling, Site
from .gating import Gate

if TYPE_CHECKING:
    from ..context import AuditContext
    from ..rulebase import AstRule
    from .loader import CodeProgram


def one_per_place(findings: list[Finding]) -> list[Finding]:
    """One finding per place: the same line reached along several paths (a branch that the
    logs disable and one they enable) keeps its most severe reading."""
    best: dict[str, Finding] = {}
    order: list[str] = []
    for f in findings:
        key = f.location.display() if f.location else f.message
        mine = best.get(key)
        if mine is None:
            best[key] = f
            order.append(key)
        elif f.severity.rank > mine.severity.rank:
            best[key] = f
    return [best[k] for k in order]


def site_location(site: Site, ctx: "AuditContext | None") -> Location:
    start, end = site.span()
    if site.file.is_entry and ctx is not None:
        return ctx.code_location(start, end)
    return Location(site.file.path, start, end, wrapper=site.file.wrapper)


def site_excerpt(site: Site) -> str | None:
    line = site.line()
    source = getattr(site.file, "source", None)
    if line is None or source is None:
        return None
    lines = getattr(site.file, "_lines", None)
    if lines is None:
        lines = source.splitlines()
        site.file._lines = lines  # type: ignore[attr-defined]
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def to_finding(rule: "AstRule", hit: Hit, program: "CodeProgram", ctx: "AuditContext | None") -> Finding:
    severity = hit.severity or rule.SEVERITY
    message = hit.message
    related: list[Location] = [site_location(s, ctx) for s in hit.related]
    values = dict(hit.values)
    if not hit.ungated:
        # guards in the flagged function apply together; a site in another function (inside
        # a callee) is behind that function's own guards, decided on their own
        here = [s for s in hit.also_guarded_by if s.func is hit.site.func]
        elsewhere = [s for s in hit.also_guarded_by if s.func is not hit.site.func and s.stmt is not None]
        extra = tuple(g for s in here for g in (s.stmt.guards if s.stmt else ()))
        gate = program.gates.gate(hit.site.func, hit.site.stmt, hit.weights, extra_guards=extra)
        # the guards of the other sites here are part of the gate, so a printed line must show
        # each of them ran, not only the flagged one; where a weight alone switches the path
        # off (`"val" if val_only else "train"` with val_only false), a line showing that the
        # statement ran says nothing of the value it took
        by_weight = bool(hit.weights) and _off_in_every_run(gate) and not _off_in_every_run(
            program.gates.gate(hit.site.func, hit.site.stmt, [], extra_guards=extra))
        severity, note, logs = decide(severity, gate, program, [] if by_weight else [hit.site, *here])
        for other in elsewhere:
            if not other.stmt.guards or severity is Severity.INFO:
                continue
            inner_gate = program.gates.gate(other.func, other.stmt, [], own_guards_only=True)
            if not inner_gate.involves_flags:
                continue  # data conditions inside the callee (`if raw_end > n: break`)
            lowered, other_note, other_logs = decide(severity, inner_gate, program, [other])
            # only a flag that switches the inner statement off lowers the finding
            if lowered.rank < severity.rank and not other_note.startswith("could not tell"):
                severity, logs = lowered, other_logs
                note = f"{other_note} (in `{other.func.qualname}`)"
        if note:
            message = f"{message} [{note}]"
        related.extend(logs)
        if gate.involves_flags:
            values["flags"] = [u.describe() for u in _flag_uses(gate)]
        ruling = hit.ruling or rule.RULING
        severity, ruling_note = apply_ruling(severity, ruling, ctx.date if ctx is not None else None)
        if ruling_note:
            message = f"{message} [{ruling_note}]"
        values["ruling"] = ruling.describe()
    return rule.finding(message, location=site_location(hit.site, ctx), excerpt=site_excerpt(hit.site),
                        values=values, related=related, severity=severity)


def _off_in_every_run(gate: Gate) -> bool:
    return bool(gate.outcomes) and all(o.enabled is False for o in gate.outcomes)


def _flag_uses(gate: Gate):
    seen = set()
    for u in gate.flag_uses:
        key = (u.key, u.source, u.log, u.line, repr(u.value))
        if key not in seen:
            seen.add(key)
            yield u


def decide(severity: Severity, gate: Gate, program: "CodeProgram", sites: list[Site] | None = None
           ) -> tuple[Severity, str, list[Location]]:
    """The finding's severity given where its code path ran: the logged flag values first;
    where they do not show it enabled, lines that only its path prints in the logs. Every
    site of the finding (the flagged statement and the related ones, such as an update in
    a callee behind its own flag) must show it ran."""
    severity_, note, logs = _decide_by_flags(severity, gate, program)
    if severity_ is severity and not note.startswith("could not tell"):
        return severity_, note, logs
    if note.startswith("enabled") or not sites:
        return severity_, note, logs
    printed = [p for s in sites[:1] for p in program.printed.ran(s, _own_guards_clear(program, s))]
    if not printed or not all(program.printed.ran(s, _own_guards_clear(program, s)) for s in sites[1:]):
        return severity_, note, logs
    shown = "; ".join(p.describe() for p in printed[:3])
    return severity, f"it ran: {shown}", [Location(p.log, p.line, p.line) for p in printed]


def _own_guards_clear(program: "CodeProgram", site: Site) -> bool:
    """No flag of the site's own function keeps it off: only whether the function ran is open."""
    own = program.gates.gate(site.func, site.stmt, [], own_guards_only=True)
    return not own.involves_flags or all(o.enabled is True for o in own.outcomes)


def _decide_by_flags(severity: Severity, gate: Gate, program: "CodeProgram") -> tuple[Severity, str, list[Location]]:
    if gate.unreachable:
        # dead code does not run, but a name can still be called dynamically: a reviewer confirms
        lowered = Severity.WARNING if severity is Severity.ERROR else severity
        return lowered, "in a function nothing in the script calls: confirm it is dead code", []
    outcomes = gate.outcomes
    if not gate.involves_flags:
        if outcomes and all(o.enabled is False for o in outcomes):
            return Severity.INFO, "behind a condition that is never true", []
        return severity, "", []
    logs: list[Location] = []
    enabled = [o for o in outcomes if o.enabled is True]
    if enabled:
        logged = [o for o in enabled if any(u.source == "log" for u in o.uses)]
        if logged:
            parts = [", ".join(u.describe() for u in o.uses) for o in logged]
            logs = _log_locations(logged)
            return severity, "enabled in " + "; ".join(dict.fromkeys(parts)), logs
        uses = ", ".join(dict.fromkeys(u.describe() for o in enabled for u in o.uses))
        return severity, f"enabled by default: {uses}; no log prints these values", []
    undecided = [o for o in outcomes if o.enabled is None]
    if undecided:
        texts = ", ".join(dict.fromkeys(t for o in undecided for t in o.undecided)) or "its guard"
        # the code may never run: a reviewer confirms, the audit does not fail it
        lowered = Severity.WARNING if severity is Severity.ERROR else severity
        return lowered, f"could not tell whether it runs: `{texts}` is not decidable statically", []
    # disabled everywhere: by the logs, or only by code defaults nobody printed
    by_logs = bool(program.runs) and all(_disabled_by_logs(program, gate, o) for o in outcomes)
    uses = ", ".join(dict.fromkeys(u.describe() for o in outcomes for u in o.uses))
    if by_logs:
        logs = _log_locations(outcomes)
        return Severity.INFO, f"disabled in every logged run: {uses}", logs
    if severity is Severity.INFO:
        return severity, f"disabled by default: {uses}", []
    return Severity.WARNING, (f"disabled only by the code default ({uses}); no log shows the value the runs used, "
                              f"so it cannot be confirmed off"), []


def apply_ruling(severity: Severity, ruling: Ruling, code_date: str | None) -> tuple[Severity, str]:
    """The severity under the ruling's date and standing: code dated before a ruling that
    restricted an accepted practice gets info; a disputed ruling gives at most a warning."""
    if severity is Severity.INFO:
        return severity, ""
    if code_date and code_date[:10] < ruling.date:
        return Severity.INFO, (f"the submission is dated {code_date[:10]}, before the ruling it would break "
                               f"({ruling.id}, {ruling.source}, {ruling.date})")
    if ruling.disputed and severity is Severity.ERROR:
        return Severity.WARNING, f"{ruling.id} is disputed ({ruling.source}): a maintainer decides"
    return severity, ""


def _disabled_by_logs(program: "CodeProgram", gate: Gate, outcome) -> bool:
    """Disabled even when every value the log does not print is taken as unknown."""
    return outcome.enabled_by_logs_alone is False


def _log_locations(outcomes) -> list[Location]:
    out: list[Location] = []
    seen = set()
    for o in outcomes:
        for u in o.uses:
            if u.source == "log" and u.log and (u.log, u.line) not in seen:
                seen.add((u.log, u.line))
                out.append(Location(u.log, u.line, u.line))
    return out

"""Wording helpers shared by the legality rules: how a site, a data slice or an event is
named in a finding's message."""

from __future__ import annotations

from . import ir
from .dataflow import Event, Incident, Origin
from .program import Site


def line(site: Site | None) -> str:
    if site is None:
        return "?"
    n = site.line()
    return str(n) if n is not None else "?"


def where(site: Site) -> str:
    """``line 12`` in the entry file, ``ngram_tilt.py:12`` in a helper module."""
    n = line(site)
    return f"line {n}" if site.file.is_entry else f"{site.file.path}:{n}"


def snippet(site: Site, limit: int = 70) -> str:
    x = site.x
    if isinstance(x, ir.Call):
        text = ir.render(x, limit=limit)
    elif site.stmt is not None:
        text = statement_text(site.stmt, limit)
    else:
        text = site.func.name
    return f"`{text}`"


def statement_text(s: ir.S, limit: int = 70) -> str:
    if isinstance(s, ir.Assign):
        op = f" {s.op}= " if s.op else " = "
        text = ", ".join(ir.render(t) for t in s.targets) + op + ir.render(s.value)
    elif isinstance(s, (ir.ExprS, ir.Return)) and s.value is not None:
        text = ("return " if isinstance(s, ir.Return) else "") + ir.render(s.value)
    elif isinstance(s, ir.Loop):
        text = (f"for {ir.render(s.target)} in {ir.render(s.iter)}" if s.kind == "for" else f"while {ir.render(s.iter)}")
    elif isinstance(s, ir.If):
        text = f"if {ir.render(s.test)}"
    else:
        text = type(s).__name__.lower()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def data(origin: Origin) -> str:
    """The data an origin names, the way the code spells it when it can."""
    path = "".join(e.text for e in origin.path if not e.text.startswith("<"))
    if origin.root.startswith("P:") or origin.root.startswith("F:"):
        return f"`{origin.root[2:]}{path}`"
    name = {"VAL": "validation tokens", "TRAIN": "training data", "GEN": "generated tokens"}.get(origin.root, origin.root)
    return f"{name} `{path}`" if path else name


def via(event: Event) -> str:
    """`` (in `ttt_adapt`, line 40)`` when the effect happens inside a called function."""
    if not event.inner:
        return ""
    inner = event.inner[-1]
    return f" (inside `{inner.func.qualname}`, {where(inner)})"


def loop_site(inc: Incident) -> Site | None:
    if inc.loop is None:
        return None
    return Site(inc.func, inc.loop)


def path_sites(*events: Event) -> list[Site]:
    """Every site an incident needs to have run: each event's site and the statements inside
    the callees it went through (each behind its own guards)."""
    out: list[Site] = []
    for ev in events:
        out.append(ev.site)
        out.extend(ev.inner)
    return out


def related_sites(*events: Event, extra: list[Site | None] = ()) -> list[Site]:
    out: list[Site] = []
    for ev in events:
        out.append(ev.site)
        out.extend(ev.inner)
    out.extend(s for s in extra if s is not None)
    seen = set()
    unique = []
    for s in out:
        key = (id(s.func), id(s.stmt), id(s.x))
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique


def update_words(event: Event) -> str:
    if event.kind == "cache" or event.detail == "cache":
        return "cache update"
    if event.detail == "slot":
        return "optimisation of a per-window tensor"
    return "weight update"


def uncertainty(inc: Incident) -> str:
    """The reason a finding needs review when the data's origin is unknown."""
    if not inc.uncertain:
        return ""
    return (f" [undecided: nothing shows whether {data(inc.origin)} holds validation tokens (no caller passes data "
            f"the audit recognises); review the callers]")

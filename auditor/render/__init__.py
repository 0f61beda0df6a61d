"""Renderers. Every format is produced from the canonical JSON document of a report.

``document(report)`` builds that document: for one folder it is the folder's result with
``schema_version`` and ``tool`` on top; for several folders it is a list of per-folder results
plus a summary (``document``). Markdown and text come from the jinja2 templates in
``templates/``; SARIF and workflow annotations are built in ``sarif`` and ``github``. No
renderer reads anything but the document: the rule table SARIF lists is the document's own
``tool.rules``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, Callable

import jinja2

from ..formatting import bpb_text
from ..model import AuditReport
from .document import document, folder_documents

VERDICT_ICON = {"PASS": "✅", "NEEDS_REVIEW": "⚠️", "FAIL": "❌", "INCOMPLETE": "⛔"}
MARKER = "<!-- pgolf-audit:review -->"


# ---- text helpers used by the templates: the one escaping layer lives in .markdown ----------

from .markdown import (  # noqa: E402
    Md, finalize_markdown, finalize_text, md_code, md_code_cell, md_escape, md_fence, md_indent, md_message,
)
from .screen import deciding, ordered, problems, screen, shorten  # noqa: E402


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value))
        except (TypeError, ValueError):
            return None
    return float(value) if value == value and abs(value) != float("inf") else None


def fmt_int(value: Any) -> Md:
    if value is None or value == "":
        return Md("—")
    try:
        return Md(f"{int(value):,}")
    except (TypeError, ValueError, OverflowError):
        return md_escape(value)


def fmt_num(value: Any, digits: int = 1) -> Md:
    if value is None or value == "":
        return Md("—")
    v = _number(value)
    return Md(f"{v:,.{digits}f}") if v is not None else md_escape(value)


def fmt_bpb(value: Any) -> Md:
    if value is None or value == "":
        return Md("—")
    v = _number(value)
    if v is None:
        return md_escape(value)
    return Md(bpb_text(v, min_decimals=4))


def fmt_signed(value: Any) -> Md:
    v = _number(value)
    return Md("—") if v is None else Md(f"{v:+.5f}")


def fmt_p(value: Any) -> Md:
    v = _number(value)
    if v is None:
        return Md("—")
    return Md(f"{v:.2e}" if v < 1e-3 else f"{v:.4f}")


def mark(value: Any, limit: Any) -> Md:
    """ ❌ after a measured value over its limit."""
    v, cap = _number(value), _number(limit)
    return Md(" ❌") if v is not None and cap is not None and v > cap else Md("")


TIME_RULES = {"train": ("PG301",), "eval": ("PG303",)}


def time_mark(r: dict[str, Any], kind: str) -> Md:
    """After the max train/eval seconds: ❌ when a time rule reports an error, else a note when
    the value is past the cap but tolerated (the stop check after the last step)."""
    value = _number((r.get("measured") or {}).get(f"{kind}_seconds_max"))
    cap = _number((r.get("limits") or {}).get(f"{kind}_seconds_max"))
    if value is None or cap is None or value <= cap:
        return Md("")
    codes = TIME_RULES[kind]
    if any(f.get("code") in codes and f.get("severity") == "error"
           for f in r.get("findings") or []):
        return Md(" ❌")
    return Md(f" (+{value - cap:.3f} s: within one step)")


def where(location: Any) -> str:
    """``path:start-end (json path)`` of a location dict (plain text: print it through ``code``)."""
    if not isinstance(location, dict):
        return ""
    text = str(location.get("path") or "")
    start, end = location.get("start_line"), location.get("end_line")
    if start:
        text += f":{start}"
        if end and end != start:
            text += f"-{end}"
    if location.get("json_path"):
        text += f" ({location['json_path']})"
    return text


SEVERITY_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def _environment(finalize: Callable[[Any], str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("pgolf_audit.render").joinpath("templates"))),
        autoescape=False,  # Markdown, not HTML: every printed value passes ``finalize`` instead
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_escape, code=md_code, codecell=md_code_cell, fence=md_fence, indent=md_indent,
                       msg=md_message, msgcell=lambda v: md_message(v, cell=True), shorten=shorten,
                       int=fmt_int, num=fmt_num, bpb=fmt_bpb, p=fmt_p, signed=fmt_signed)
    env.globals.update(icon=VERDICT_ICON, sev_icon=SEVERITY_ICON, marker=Md(MARKER), screen=screen, ordered=ordered, problems=problems,
                       deciding=deciding, mark=mark, time_mark=time_mark, where=where, rerun_section=_rerun_section)
    return env


_ENVS: dict[str, jinja2.Environment] = {}


def env(kind: str = "markdown") -> jinja2.Environment:
    """``markdown``: every value escaped unless a filter made it Markdown; ``text``: every value
    stripped of control characters and line breaks."""
    if kind not in _ENVS:
        _ENVS[kind] = _environment(finalize_markdown if kind == "markdown" else finalize_text)
    return _ENVS[kind]


def _rerun_section(r: dict[str, Any]) -> Md:
    """The Reproduction section (``rerun.md.j2``), rendered through the same escaping layer."""
    return Md(env().get_template("rerun.md.j2").render(r=r))


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_markdown(doc: dict[str, Any]) -> str:
    return env().get_template("review.md.j2").render(doc=doc, folders=folder_documents(doc), multi="results" in doc)


def render_text(doc: dict[str, Any]) -> str:
    return env("text").get_template("review.txt.j2").render(doc=doc, folders=folder_documents(doc), multi="results" in doc)


from .github import render_github  # noqa: E402
from .sarif import render_sarif  # noqa: E402

RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "markdown": render_markdown,
    "json": render_json,
    "text": render_text,
    "sarif": render_sarif,
    "github": render_github,
}


def render(report: AuditReport | dict[str, Any], fmt: str) -> str:
    doc = report if isinstance(report, dict) else document(report)
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(RENDERERS)})") from None
    return renderer(doc)

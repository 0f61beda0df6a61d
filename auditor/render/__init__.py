"""Renderers. Every format is produced from the canonical JSON document of a report.

``document(report)`` builds that document: for one folder it is the folder's result with
``schema_version`` and ``tool`` on top; for several folders it is a list of per-folder results
plus a summary. Markdown and text come from jinja2 templates under ``reports/``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, Callable

import jinja2

from ..model import SCHEMA_VERSION, AuditReport

VERDICT_ICON = {"PASS": "✅", "NEEDS_REVIEW": "⚠️", "FAIL": "❌", "INCOMPLETE": "⛔"}
MARKER = "<!-- pgolf-audit:review -->"


def document(report: AuditReport) -> dict[str, Any]:
    # A pull request's report keeps the multi-folder shape: its verdict covers the PR's shape
    # as well as the folder(s), and the "pr" section sits beside the results.
    if len(report.results) == 1 and not report.errors and report.pr is None:
        doc = {"schema_version": SCHEMA_VERSION, "tool": report.tool}
        doc.update(report.results[0].to_json())
        return doc
    return report.to_json()


def folder_documents(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-folder result documents of a canonical document of either shape."""
    return doc["results"] if "results" in doc else [doc]


# ---- text helpers used by the templates ------------------------------------------------

# Characters that can start markup inline: emphasis, code, links/images, HTML, tables,
# strikethrough. (Block markers like # or - only matter at the start of a line, and the
# templates never start a line with submitter text.)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(value: Any) -> str:
    """Escape text for Markdown so submitter-controlled strings cannot inject markup or HTML."""
    if value is None:
        return ""
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """Inline code span that survives backticks inside the value."""
    text = "" if value is None else str(value).replace("\r", " ").replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_code_cell(value: Any) -> str:
    """An inline code span inside a table cell: GFM splits cells at ``|`` even inside code
    spans unless it is escaped, so a file name holding ``|`` cannot break the table."""
    return md_code(value).replace("|", "\\|")


def md_fence(value: Any) -> str:
    """A fenced block whose fence is longer than any backtick run inside the excerpt."""
    text = "" if value is None else str(value).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def fmt_int(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def fmt_bpb(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        text = f"{float(value):.8f}".rstrip("0")
        return text + "0" * max(0, 4 - len(text.split(".")[1]))
    except (TypeError, ValueError):
        return str(value)


def fmt_p(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v:.2e}" if v < 1e-3 else f"{v:.4f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("pgolf_audit.reports"))),
        autoescape=False,  # Markdown, not HTML: escaping is explicit through md_escape/md_code
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_escape, code=md_code, codecell=md_code_cell, fence=md_fence, int=fmt_int, num=fmt_num, bpb=fmt_bpb, p=fmt_p)
    env.globals.update(icon=VERDICT_ICON, marker=MARKER)
    return env


_ENV: jinja2.Environment | None = None


def env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_markdown(doc: dict[str, Any]) -> str:
    return env().get_template("review.md.j2").render(doc=doc, folders=folder_documents(doc), multi="results" in doc)


def render_text(doc: dict[str, Any]) -> str:
    return env().get_template("review.txt.j2").render(doc=doc, folders=folder_documents(doc), multi="results" in doc)


# SARIF and workflow annotations read the helpers above, so they are imported after them.
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

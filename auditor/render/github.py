"""GitHub Actions workflow commands (``--format github``), rendered from the JSON document.

One line per live finding: ``::error file=…,line=…,endLine=…,title=PG201 artifact-over-limit::message``
(``warning`` for warnings, ``notice`` for info). Annotations are a convenience shown inline
on the PR's files; the Markdown review stays the authoritative report, because GitHub shows
only a limited number of annotations per step.

Escaping follows the workflow-command rules: in the message ``%``, ``\\r`` and ``\\n`` are
percent-encoded, and in properties ``:`` and ``,`` too, so a submitter's file name or README
text can neither end the command early nor start a second one on a new line.
"""

from __future__ import annotations

from typing import Any

from .document import folder_documents
from .sarif import folder_base, join_uri_path

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(value: Any) -> str:
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: Any) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _annotation(finding: dict[str, Any], base: str, context: str) -> str:
    location = finding.get("location") or None
    message = str(finding.get("message") or "")
    props = []
    if location and location.get("path"):
        props.append(f"file={escape_property(join_uri_path(base, location['path']))}")
        start, end = location.get("start_line"), location.get("end_line")
        if location.get("wrapper") and start:
            lines = f"line {start}" + (f"-{end}" if end and end != start else "")
            message += f" ({lines} of the unwrapped source; {location['path']} is a {location['wrapper']})"
        elif isinstance(start, int) and start > 0:
            props.append(f"line={start}")
            if isinstance(end, int) and end > start:
                props.append(f"endLine={end}")
    elif context:
        message = f"{context}: {message}"
    props.append(f"title={escape_property(finding['code'] + ' ' + str(finding.get('name', '')))}")
    command = COMMANDS.get(finding.get("severity"), "warning")
    return f"::{command} {','.join(props)}::{escape_data(message)}"


def render_github(doc: dict[str, Any]) -> str:
    lines = []
    pr = doc.get("pr")
    if pr:
        for finding in pr.get("findings", []):
            lines.append(_annotation(finding, "", "pull request"))
    for folder in folder_documents(doc):
        base = folder["path"].strip("/") if pr else folder_base(folder["path"])
        for finding in folder.get("findings", []):
            lines.append(_annotation(finding, base, base or folder.get("name", "")))
    for error in doc.get("errors") or []:
        lines.append(f"::error title={escape_property('pgolf-audit')}::"
                     f"{escape_data(str(error.get('path')) + ': could not be audited: ' + str(error.get('error')))}")
    return "\n".join(lines) + ("\n" if lines else "")


def action_outputs(doc: dict[str, Any]) -> dict[str, str]:
    """The composite action's outputs from a report document of either shape."""
    summary = doc.get("summary") or {}
    counts = summary.get("findings", summary)  # multi-folder shape nests the totals
    return {
        "verdict": str(doc.get("verdict", "INCOMPLETE")),
        "error-count": str(int(counts.get("error", 0))),
        "warning-count": str(int(counts.get("warning", 0))),
        "info-count": str(int(counts.get("info", 0))),
    }

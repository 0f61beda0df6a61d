"""The canonical JSON document of a report, which every renderer reads.

For one folder it is the folder's result with ``schema_version`` and ``tool`` on top; for
several folders (or a pull request) it is a list of per-folder results plus a summary. The
``tool`` section carries the rule table (``tool.rules``: each rule's metadata and docs), so a
renderer never needs the installed registry.
"""

from __future__ import annotations

from typing import Any

from ..model import SCHEMA_VERSION, AuditReport


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

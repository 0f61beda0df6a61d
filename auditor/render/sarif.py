"""SARIF 2.1.0, rendered from the canonical JSON document.

One run. ``tool.driver.rules`` is the document's rule table (``tool.rules``: every rule of
the auditor that wrote it; stable ids = rule codes, the summary as ``shortDescription``, "What
it checks" as ``fullDescription``, the rule's docs as ``help``), so code-scanning alerts have
titles and help even for rules that did not fire. A code the table lacks (a hand-made or older
document) gets a descriptor made from its finding.
Each finding becomes one result:

- ``locations`` hold repository-relative URIs: the folder path plus the file path inside the
  folder. In PR mode folder paths are already relative to the repository root; in a plain
  audit they are made relative to the current directory when the folder is below it, else
  the folder's name is used.
- ``region`` is given only when the finding has line numbers *of that file*. Lines found in
  the unwrapped source of a compressed wrapper are not lines of the submitted file, so for
  those the region is left out and the message names the wrapper and the unwrapped lines.
- Every result has a location, because GitHub code scanning rejects a whole SARIF file when
  one result has none. A finding without a file (statistics, a missing log) is anchored to
  the folder's ``submission.json`` (``README.md`` when submission.json is reported missing),
  a PR-level finding without a path to the first changed path (or the repository README.md),
  and the result's ``properties.anchored`` says so.
- ``partialFingerprints`` carries the finding's fingerprint (code, file, normalised excerpt),
  so alerts survive line shifts between pushes.

Submitter-controlled text only reaches ``message.text`` (plain text, where ``[`` and ``]``
are escaped so it cannot form SARIF embedded links) and percent-encoded URIs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from .document import folder_documents

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
# The challenge's rules, which every rule of this tool enforces (cited in each rule's docs).
INFORMATION_URI = "https://github.com/openai/parameter-golf"
FINGERPRINT_KEY = "pgolfAudit/v1"

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
PRECISION = {"high": "high", "medium": "medium", "low": "low"}
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINK_SYNTAX = re.compile(r"(\\*)([\[\]])")


def sarif_text(value: Any) -> str:
    """Plain SARIF message text: control characters removed, ``[``/``]`` escaped (SARIF
    §3.11.6) so submitter text cannot pose as an embedded link."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    return _LINK_SYNTAX.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2), text)


def uri_for(path: str) -> str:
    """A relative URI reference for a POSIX path (spaces, ``<``, ``%``, ``#`` … percent-encoded)."""
    return quote(path, safe="/")


def folder_base(path: str, cwd: Path | None = None) -> str:
    """The folder as a path relative to the repository or current directory ("" for ".")."""
    cwd = (cwd or Path.cwd()).resolve()
    native = Path(path)
    if native.is_absolute():
        try:
            rel = native.resolve().relative_to(cwd)
        except (ValueError, OSError):
            return native.name
        return "" if rel == Path(".") else rel.as_posix()
    normal = os.path.normpath(path).replace(os.sep, "/")
    if normal == ".":
        return ""
    if normal == ".." or normal.startswith("../"):
        return Path(path).resolve().name
    return normal


def join_uri_path(base: str, rel: str) -> str:
    rel = rel.lstrip("/")
    return f"{base}/{rel}" if base else rel


def _rule_text(rule: dict[str, Any]) -> str:
    parts = [rule.get("summary") or ""]
    for title, body in (rule.get("docs") or {}).items():
        parts.append(f"{title}:\n{body}")
    return "\n\n".join(parts)


def _rule_markdown(rule: dict[str, Any]) -> str:
    parts = [f"## {rule['code']} {rule['name']}", rule.get("summary") or ""]
    refs = rule.get("references") or []
    parts.append(f"Category: {rule.get('category')} · severity: {rule.get('severity')}"
                 + (f" · enforces: {', '.join(refs)}" if refs else ""))
    for title, body in (rule.get("docs") or {}).items():
        parts.append(f"### {title}\n\n{body}")
    return "\n\n".join(p for p in parts if p) + "\n"


def rule_descriptor(rule: dict[str, Any]) -> dict[str, Any]:
    """The SARIF descriptor of one entry of the document's rule table (``tool.rules``)."""
    docs = rule.get("docs") or {}
    summary = rule.get("summary") or rule["name"]
    return {
        "id": rule["code"],
        "name": rule["name"],
        "shortDescription": {"text": summary},
        "fullDescription": {"text": docs.get("What it checks") or summary},
        "help": {"text": _rule_text(rule), "markdown": _rule_markdown(rule)},
        "defaultConfiguration": {"level": LEVELS.get(rule.get("severity"), "warning")},
        "properties": {
            "tags": [rule.get("category", "unknown"), rule.get("confidence", "unknown")],
            "precision": PRECISION.get(rule.get("confidence"), "medium"),
            "problem.severity": PROBLEM_SEVERITY.get(rule.get("severity"), "warning"),
            "references": list(rule.get("references") or []),
        },
    }


def _fallback_descriptor(finding: dict[str, Any]) -> dict[str, Any]:
    """For a code the installed registry does not know (a report from another version)."""
    return {
        "id": finding["code"],
        "name": finding.get("name") or finding["code"],
        "shortDescription": {"text": sarif_text(finding.get("name") or finding["code"])},
        "defaultConfiguration": {"level": LEVELS.get(finding.get("severity"), "warning")},
        "properties": {"tags": [finding.get("category", "unknown"), finding.get("confidence", "unknown")]},
    }


def _anchor_for_folder(folder: dict[str, Any]) -> str:
    missing = {
        (f.get("location") or {}).get("path")
        for f in folder.get("findings", [])
        if f.get("code") == "PG601"
    }
    return "README.md" if "submission.json" in missing else "submission.json"


def _result(finding: dict[str, Any], rule_index: int, base: str, anchor: str) -> dict[str, Any]:
    location = finding.get("location") or None
    message = str(finding.get("message") or "")
    properties: dict[str, Any] = {
        "category": finding.get("category"),
        "confidence": finding.get("confidence"),
    }
    if location and location.get("path"):
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri_for(join_uri_path(base, location["path"]))}}
        start, end = location.get("start_line"), location.get("end_line")
        if location.get("wrapper") and start:
            lines = f"line {start}" + (f"-{end}" if end and end != start else "")
            message += (f" ({lines} of the unwrapped source; {location['path']} is a {location['wrapper']}, "
                        "see `pgolf-audit unwrap`)")
            properties["unwrappedLines"] = {"start": start, "end": end or start}
        elif isinstance(start, int) and start > 0:
            region: dict[str, int] = {"startLine": start}
            if isinstance(end, int) and end >= start:
                region["endLine"] = end
            physical["region"] = region
        if location.get("json_path"):
            message += f" (at {location['json_path']})"
            properties["jsonPath"] = location["json_path"]
    else:
        physical = {"artifactLocation": {"uri": uri_for(join_uri_path(base, anchor))}}
        properties["anchored"] = True
        properties["anchorReason"] = f"the finding has no file location; anchored to {join_uri_path(base, anchor)}"
    result: dict[str, Any] = {
        "ruleId": finding["code"],
        "ruleIndex": rule_index,
        "level": LEVELS.get(finding.get("severity"), "warning"),
        "message": {"text": sarif_text(message)},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: str(finding.get("fingerprint") or "")},
        "properties": properties,
    }
    related = (finding.get("evidence") or {}).get("related") or []
    related_locations = []
    for i, rel in enumerate(related):
        if not rel.get("path"):
            continue
        rel_physical: dict[str, Any] = {"artifactLocation": {"uri": uri_for(join_uri_path(base, rel["path"]))}}
        if isinstance(rel.get("start_line"), int) and rel["start_line"] > 0 and not rel.get("wrapper"):
            rel_physical["region"] = {"startLine": rel["start_line"]}
        related_locations.append({"id": i, "physicalLocation": rel_physical})
    if related_locations:
        result["relatedLocations"] = related_locations
    return result


def sarif_document(doc: dict[str, Any], cwd: Path | None = None) -> dict[str, Any]:
    rules = [r for r in (doc.get("tool") or {}).get("rules") or [] if isinstance(r, dict) and r.get("code") and r.get("name")]
    descriptors = [rule_descriptor(r) for r in rules]
    index = {d["id"]: i for i, d in enumerate(descriptors)}

    def rule_index(finding: dict[str, Any]) -> int:
        code = finding["code"]
        if code not in index:
            index[code] = len(descriptors)
            descriptors.append(_fallback_descriptor(finding))
        return index[code]

    results = []
    pr = doc.get("pr")
    if pr:
        changes = pr.get("changes") or []
        pr_anchor = changes[0]["path"] if changes else "README.md"
        for finding in pr.get("findings", []):
            results.append(_result(finding, rule_index(finding), "", pr_anchor))
    for folder in folder_documents(doc):
        base = folder_base(folder["path"], cwd) if not pr else folder["path"].strip("/")
        anchor = _anchor_for_folder(folder)
        for finding in folder.get("findings", []):
            results.append(_result(finding, rule_index(finding), base, anchor))

    tool = doc.get("tool") or {}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": tool.get("name", "pgolf-audit"),
                "version": str(tool.get("version", "")),
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        "automationDetails": {"id": "pgolf-audit/"},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"verdict": doc.get("verdict"), "rulesDigest": tool.get("rules_digest")},
    }
    if pr:
        run["properties"]["pr"] = {"base": pr.get("base_sha"), "head": pr.get("head_sha"), "mergeBase": pr.get("merge_base"),
                                   "shape": sarif_text(pr.get("shape"))}
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(doc: dict[str, Any]) -> str:
    return json.dumps(sarif_document(doc), indent=2, ensure_ascii=False) + "\n"

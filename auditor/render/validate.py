"""Reading a report.json back: validate it against the published schema, keep only what it declares.

The comment job of the GitHub workflow runs with write access and renders the review from a
report.json that an unprivileged job produced from the pull request. Whoever wrote that file,
the review is rendered from a document that (1) validates against ``reports/audit.schema.json``
and (2) holds only the properties the schema declares (``project``), so an unexpected key can
never reach a template; every string in it is then escaped by the Markdown layer like any other.

The validator covers the keywords the schema uses (``type``, ``enum``, ``const``, ``pattern``,
``minLength``, ``minimum``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``$ref``, ``oneOf``, ``allOf``, ``if``/``then``): no third-party package is needed at run time.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

MAX_DEPTH = 64


class ReportInvalid(ValueError):
    """The document does not validate against the report schema."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("pgolf_audit.reports").joinpath("audit.schema.json").read_text(encoding="utf-8"))


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ReportInvalid(f"unsupported $ref {ref}")
        target: Any = schema()
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
        seen += 1
        if seen > 32:
            raise ReportInvalid("$ref loop")
    return node


def errors(value: Any, node: dict[str, Any], path: str = "$", depth: int = 0) -> list[str]:
    """Every way ``value`` fails ``node`` (empty when it validates)."""
    if depth > MAX_DEPTH:
        return [f"{path}: nested too deeply"]
    node = _resolve(node)
    out: list[str] = []
    types = node.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_TYPES[t](value) for t in names):
            return [f"{path}: expected {'/'.join(names)}, got {type(value).__name__}"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: not a finite number"]
    if "const" in node and value != node["const"]:
        out.append(f"{path}: must be {node['const']!r}")
    if "enum" in node and value not in node["enum"]:
        out.append(f"{path}: not one of {node['enum']}")
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            out.append(f"{path}: does not match {node['pattern']}")
        if len(value) < node.get("minLength", 0):
            out.append(f"{path}: too short")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "minimum" in node and value < node["minimum"]:
        out.append(f"{path}: below {node['minimum']}")
    if isinstance(value, dict):
        for key in node.get("required", []):
            if key not in value:
                out.append(f"{path}: missing {key}")
        props = node.get("properties", {})
        for key, sub in props.items():
            if key in value:
                out += errors(value[key], sub, f"{path}.{key}", depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in props:
                    out += errors(item, extra, f"{path}.{key}", depth + 1)
        elif extra is False:
            out += [f"{path}: unexpected {key}" for key in value if key not in props]
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            out += errors(item, node["items"], f"{path}[{i}]", depth + 1)
    if "allOf" in node:
        for sub in node["allOf"]:
            out += errors(value, sub, path, depth + 1)
    if "oneOf" in node:
        results = [errors(value, sub, path, depth + 1) for sub in node["oneOf"]]
        matching = sum(not r for r in results)
        if matching == 0:
            out += min(results, key=len)  # the problems of the nearest shape
        elif matching > 1:
            out.append(f"{path}: matches {matching} of the {len(node['oneOf'])} shapes")
    if "if" in node and not errors(value, node["if"], path, depth + 1) and "then" in node:
        out += errors(value, node["then"], path, depth + 1)
    return out


def _declared(node: dict[str, Any], value: Any, depth: int = 0) -> Any:
    """``value`` with only the properties ``node`` declares (free-form objects are kept whole)."""
    if depth > MAX_DEPTH:
        return None
    node = _resolve(node)
    if isinstance(value, list):
        items = node.get("items")
        return [_declared(items, v, depth + 1) for v in value] if isinstance(items, dict) else list(value)
    if not isinstance(value, dict):
        return value
    branches = [node] + [_resolve(s) for s in node.get("allOf", [])]
    if "oneOf" in node:
        branches += [_resolve(s) for s in node["oneOf"] if not errors(value, s)]
    props: dict[str, Any] = {}
    free = False
    for b in branches:
        for sub in b.get("allOf", []):
            sub = _resolve(sub)
            props.update(sub.get("properties", {}))
            free |= "properties" not in sub and sub.get("type") in ("object", ["object", "null"])
        props.update(b.get("properties", {}))
        if isinstance(b.get("additionalProperties"), dict):
            free = True
    if not props:
        return dict(value)  # a free-form object (claims, measured, stats, ...): every string in it is escaped on output
    return {k: _declared(props[k], v, depth + 1) for k, v in value.items() if k in props}


def trusted_document(doc: Any) -> dict[str, Any]:
    """The report, validated against the published schema and cut to its declared properties;
    ``ReportInvalid`` (with the first problems) when it does not validate."""
    problems = errors(doc, schema())
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ReportInvalid("; ".join(problems[:5]) + more)
    return _declared(schema(), doc)

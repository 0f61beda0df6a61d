"""Rule documentation rendered from the registry (``pgolf-audit rules --code``, SARIF help)."""

from __future__ import annotations

from .rulebase import DOC_SECTIONS, CodeCase, FolderCase, Rule


def _example_text(case) -> str:
    if isinstance(case, CodeCase):
        return f"```python\n{case.code.strip()}\n```"
    if isinstance(case, FolderCase):
        return case.description
    return str(case)


def rule_markdown(cls: type[Rule]) -> str:
    meta = cls.metadata()
    lines = [
        f"## {cls.CODE} {cls.NAME}",
        "",
        cls.summary(),
        "",
        f"- category: {meta['category']}; severity: {meta['severity']}; confidence: {meta['confidence']}; "
        f"status: {meta['status']} (since {meta['since']})",
        f"- applies to: {', '.join(meta['tracks']) if meta['tracks'] else 'every track'}",
        f"- enforces: {', '.join(meta['references']) if meta['references'] else '—'}",
    ]
    sections = cls.doc_sections()
    for title in DOC_SECTIONS:
        if title in sections:
            lines += ["", f"### {title}", "", sections[title]]
    for label, cases in (("Flagged", cls.INVALID[:2]), ("Not flagged", cls.VALID[:2])):
        if cases:
            lines += ["", f"### {label} (examples)", ""]
            for case in cases:
                lines += [_example_text(case), ""]
    return "\n".join(lines).rstrip() + "\n"

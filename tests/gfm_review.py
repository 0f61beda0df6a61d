"""Measuring a rendered review the way GitHub shows it (cmark-gfm, GitHub's own renderer).

Shared by the review tests: the first screen (what shows above the first folded section),
the visible text with every ``<details>`` folded, literal escapes, table and ``<details>``
integrity, and how often each problem is listed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest

cmarkgfm = pytest.importorskip("cmarkgfm")
from cmarkgfm.cmark import Options  # noqa: E402

FIRST_SCREEN_LINES = 20
VISIBLE_CHARS = 8000


def to_html(markdown: str) -> str:
    # UNSAFE keeps raw HTML (<details>, <sub>) as GitHub does before its own sanitiser.
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def fold(html_text: str) -> str:
    """The HTML with every <details> folded: only its <summary> stays."""
    out, depth, pos = [], 0, 0
    for m in re.finditer(r"<details>|</details>|<summary>.*?</summary>", html_text, re.S):
        if depth == 0:
            out.append(html_text[pos:m.start()])
        if m.group() == "<details>":
            if depth == 0:
                out.append("<details>")
            depth += 1
        elif m.group() == "</details>":
            depth = max(0, depth - 1)
            if depth == 0:
                out.append("</details>")
        elif depth == 1:
            out.append(m.group())
        pos = m.end()
    if depth == 0:
        out.append(html_text[pos:])
    return "".join(out)


def rendered_lines(html_fragment: str) -> int:
    """Lines as GitHub lays them out: headings, paragraph lines, list items, table rows, rules."""
    count = len(re.findall(r"<h[1-6]\b|<li\b|<tr\b|<hr\b", html_fragment))
    for p in re.findall(r"<p>(.*?)</p>", html_fragment, re.S):
        count += 1 + p.count("<br")
    return count


@dataclass
class Measure:
    first_screen_lines: int
    visible_chars: int
    literal_escapes: list[str]
    tables_ok: bool
    details_ok: bool
    repeated_problems: list[str]


def measure(markdown: str) -> Measure:
    page = to_html(markdown)
    folded = fold(page)
    first = folded.split("<details>", 1)[0]
    visible = _text(folded)
    # Inline code must show exactly what it holds: a backslash before markup punctuation there is
    # an escape that leaked into a code span.
    escapes = []
    for code in re.findall(r"<code>(.*?)</code>", re.sub(r"<pre>.*?</pre>", "", page, flags=re.S), re.S):
        text = html.unescape(code)
        escapes += re.findall(r"\\[`|*_\[\]~#<>]", text)
    outside_code = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", page, flags=re.S)
    escapes += re.findall(r"\\`", _text(outside_code))
    # Tables: every table header of the Markdown became a table, every row has the header's width.
    md_tables = len(re.findall(r"^\|(?:\s*:?-+:?\s*\|)+\s*$", markdown, re.M))
    tables = re.findall(r"<table>(.*?)</table>", page, re.S)
    widths_ok = all(len({len(re.findall(r"<t[hd]\b", row)) for row in re.findall(r"<tr>(.*?)</tr>", t, re.S)}) == 1
                    for t in tables)
    details_md = markdown.count("<details>")
    details_ok = page.count("<details>") == page.count("</details>") == details_md
    bullets = re.findall(r"<li>\S+ <strong>(PG\d{3} [a-z0-9-]+)</strong> \((error|warning|info),", page)
    seen, repeated = set(), []
    for b in bullets:
        (repeated.append(b[0]) if b in seen else seen.add(b))
    return Measure(rendered_lines(first), len(visible), escapes, bool(tables) == bool(md_tables) and len(tables) == md_tables
                   and widths_ok, details_ok, repeated)

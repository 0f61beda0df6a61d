"""The one escaping layer between report data and GitHub-Flavored Markdown.

Every value a template prints goes through the environment's ``finalize``: a value built by one
of the filters below is an ``Md`` (already safe Markdown) and passes; anything else (a file name,
a seed from submission.json, a rule message, a field of a report.json read back in the comment
job) is escaped as inline text. So a template that forgets a filter prints escaped text, never
markup: the layer fails closed.

Contexts, each with its own rule:

* inline text (``md``): characters that can start inline markup or HTML are backslash-escaped or
  written as entities; line breaks become spaces; a character that would start a block at the
  beginning of a line is escaped; ``@mentions`` (users and ``@org/team``) and autolinks (``http://``,
  ``www.``, e-mail addresses) are broken with a zero-width space so GitHub neither notifies nor links.
* code spans (``code``): nothing inside a code span is interpreted, so nothing is escaped; the
  backtick run that delimits it is longer than any run inside, and line breaks become spaces.
* table cells (``codecell``): GFM splits cells at ``|`` before inline parsing, even inside code
  spans; there ``\\|`` is the one escape GitHub removes again.
* fenced blocks (``fence``): the fence is longer than any backtick run inside; excerpts are cut to
  the statement that matters, with an ellipsis.
* rule messages (``msg``): text with `backticked` parts; each part is rendered in its context.
"""

from __future__ import annotations

import re
from typing import Any

ZWSP = "\u200b"
ELLIPSIS = "…"


class Md(str):
    """Markdown that is safe to print as is (built by a filter from escaped parts)."""

    __slots__ = ()


def _plain(value: Any) -> str:
    text = "" if value is None else str(value)
    # Line and paragraph separators of every kind, and control characters, become spaces.
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text)


# Inline markup: backslash, code, emphasis, links/images, tables, strikethrough, HTML/entities.
# `_` only matters at a word edge (GFM never opens or closes emphasis with `_` inside a word).
_INLINE = re.compile(r"[\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# At the start of a line: headings, quotes, lists, thematic breaks, setext underlines.
_BLOCK_START = re.compile(r"^(\s*)([#>+]|[-=](?=[\s=-]|$)|\d+[.)](?=\s|$))")
_MENTION = re.compile(r"@(?=[0-9A-Za-z])")
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(://)|\b(www)(\.)")


def neutralise(text: str) -> str:
    """Break @mentions, @org/team mentions, URLs, www. links and e-mail autolinks."""
    text = _MENTION.sub("@" + ZWSP, text)
    return _AUTOLINK.sub(lambda m: ":" + ZWSP + "//" if m.group(1) else m.group(2) + ZWSP + m.group(3), text)


def md_escape(value: Any) -> Md:
    """Inline text: submitter- or report-controlled strings cannot inject markup, HTML, mentions or links."""
    text = _plain(value)
    text = re.sub(r"[&<>]", lambda m: _ENTITY[m.group()], text)
    text = _INLINE.sub(lambda m: "\\" + m.group(), text)
    text = _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return Md(neutralise(text))


def md_code(value: Any) -> Md:
    """An inline code span: nothing inside is interpreted, so nothing is escaped."""
    text = _plain(value)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ") and text.strip()) else ""
    if not text:
        return Md("")
    return Md(f"{fence}{pad}{text}{pad}{fence}")


def md_code_cell(value: Any) -> Md:
    """A code span inside a table cell: ``|`` is escaped, the one escape GFM removes in cells."""
    return Md(md_code(value).replace("|", "\\|"))


def md_text_cell(value: Any) -> Md:
    return Md(md_escape(value))  # `|` is already escaped by md_escape


_SPAN = re.compile(r"`([^`]+)`")


def md_message(value: Any, cell: bool = False) -> Md:
    """A rule message: `backticked` parts become code spans, the rest is inline text."""
    text = _plain(value)
    out, pos = [], 0
    for m in _SPAN.finditer(text):
        out.append(md_escape(text[pos:m.start()]))
        out.append(md_code_cell(m.group(1)) if cell else md_code(m.group(1)))
        pos = m.end()
    out.append(md_escape(text[pos:]))
    return Md("".join(out))


# ---- excerpts ---------------------------------------------------------------------------

EXCERPT_LINE_MAX = 160
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def _keywords(context: str) -> set[str]:
    spans = _SPAN.findall(context or "")
    words = set()
    for part in spans or [context or ""]:
        words.update(_WORD.findall(part))
    return words


def cut_line(line: str, keywords: set[str], limit: int = EXCERPT_LINE_MAX) -> str:
    """A long line (a minified script, say) cut to the statement that shares the most words
    with the finding, with an ellipsis where text was left out."""
    if len(line) <= limit:
        return line
    statements = [s for s in re.split(r"(?<=;)|(?<=:)\s", line) if s.strip()] or [line]

    def score(s: str) -> int:
        return len(keywords & set(_WORD.findall(s)))

    best = max(statements, key=score) if keywords else statements[0]
    start = line.find(best)
    if len(best) > limit:
        # Centre a window on the first keyword the statement holds.
        hits = [best.find(k) for k in keywords if k in best]
        centre = min(hits) if hits else 0
        lo = max(0, centre - limit // 3)
        best, start = best[lo:lo + limit], start + lo
    best = best.strip()
    prefix = ELLIPSIS + " " if start > 0 else ""
    suffix = " " + ELLIPSIS if start + len(best) < len(line.rstrip()) else ""
    return prefix + best + suffix


def cut_excerpt(excerpt: Any, context: Any = "") -> str:
    text = "" if excerpt is None else str(excerpt).rstrip("\n")
    keywords = _keywords(str(context or ""))
    return "\n".join(cut_line(line, keywords) for line in text.split("\n"))


def md_fence(value: Any, context: Any = "") -> Md:
    """A fenced block whose fence is longer than any backtick run inside the (cut) excerpt."""
    text = cut_excerpt(value, context)
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return Md(f"{fence}text\n{text}\n{fence}")


def md_indent(value: Any, width: int = 2, first: bool = False) -> Md | str:
    """jinja's indent, keeping an ``Md`` an ``Md``."""
    text = str(value)
    pad = " " * width
    lines = text.split("\n")
    out = [(pad + l if (i or first) and l else l) for i, l in enumerate(lines)]
    joined = "\n".join(out)
    return Md(joined) if isinstance(value, Md) else joined


def finalize_markdown(value: Any) -> str:
    """Every ``{{ }}`` of a Markdown template: safe filter output passes, everything else is escaped."""
    if isinstance(value, Md):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return md_escape(value)


def finalize_text(value: Any) -> str:
    """Every ``{{ }}`` of the plain-text template: no control characters or line breaks from data
    (a terminal escape sequence or a forged line cannot come from a file name)."""
    if value is None:
        return ""
    return _plain(value)

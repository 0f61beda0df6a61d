"""Pull the claimed numbers and review-relevant words out of a record README.

READMEs are free-form markdown, so this is deliberately conservative: the headline is only
taken from the title or an early emphasised "val_bpb" statement, per-seed values only from
tables (or "seed N: X" lists) whose header names a seed column, and every other bpb-looking
number is listed as a plain mention for the rules to weigh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A bpb value as printed in READMEs: one digit before the point, at least two after. Values below
# 0.5 are gains, gaps or deltas in this challenge, not scores.
_BPB_NUMBER = r"(?<![\d.])(\d\.\d{2,10})(?![\d])"
_BPB_MIN, _BPB_MAX = 0.5, 9.99

# Only the top of a README can hold its headline claim.
_HEADLINE_SCAN_LINES = 30

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")

# "val_bpb = 1.1271", "val bpb: 1.09785", "Mean val_bpb: 1.1748", "val_var_bpb: 1.1465",
# "val_bpb 1.09785", "mean val_bpb = 1.07139"
_BPB_STATEMENT = re.compile(
    r"\b(?:val[ _]?(?:var[ _]?)?bpb|bpb)\b[^0-9|\n]{0,24}?(?:[:=]|\bis\b|\s)\s*\**\s*" + _BPB_NUMBER,
    re.IGNORECASE)
# The stricter form for plain (not emphasised) text: the word must be val_bpb / val bpb.
_VAL_BPB_STATEMENT = re.compile(
    r"\bval[ _]?(?:var[ _]?)?bpb\b[^0-9|\n]{0,24}?(?:[:=]|\s)\s*\**\s*" + _BPB_NUMBER, re.IGNORECASE)
# "1.1570 BPB", "**1.4116 ± 0.013 BPB**"
_NUMBER_THEN_BPB = re.compile(_BPB_NUMBER + r"(?:\s*(?:±|\+/-)\s*\d*\.?\d+)?\s*\**\s*bpb\b", re.IGNORECASE)
_BOLD_SPAN = re.compile(r"\*\*(.+?)\*\*")
# "Seed **1341**: 1.3970" and "`SEED=1338`, `val_bpb=1.20617460`"
_SEED_IN_TEXT = (
    re.compile(r"\bseed\s*\**\s*(?P<seed>\d{1,10})\**\s*[:=]\s*\**\s*" + _BPB_NUMBER, re.IGNORECASE),
    re.compile(r"\bseed\s*[=:]?\s*(?P<seed>\d{1,10})\b[^|\n]{0,30}?\bval_bpb\s*[=:]\s*" + _BPB_NUMBER, re.IGNORECASE),
)
_MEAN_WORD = re.compile(r"\b(?:mean|average|avg)\b", re.IGNORECASE)
_BPB_WORD = re.compile(r"bpb", re.IGNORECASE)
_SEED_HEADER = re.compile(r"seeds?", re.IGNORECASE)
_SEED_VALUE = re.compile(r"\d{1,10}")

# Review-relevant words: (keyword, pattern). One entry per keyword per line.
KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in (
    ("two-pass", r"\btwo[- ]pass\b|\b2[- ]pass\b"),
    ("rescore", r"\bre-?scor(?:e|es|ed|ing)\b"),
    ("temperature", r"\btemperature\b|\btemp[_ ]scal"),
    ("SLOT", r"\bSLOT\b"),
    ("n-gram", r"\bn-?gram"),
    ("non-record", r"\bnon[- _]?record\b"),
    ("unlimited compute", r"\bunlimited[- ]compute\b"),
    ("pre-quant TTT", r"\bpre[- _]?quant(?:ization)?[- _]TTT\b"),
    ("TTT", r"\bTTT\b|\btest[- ]time training\b"),
    ("score-first", r"\bscore[- ]first\b"),
    ("val data", r"\b(?:train(?:ed|ing|s)?|fine-?tun\w*|calibrat\w*|adapt\w*)\s+on\s+(?:the\s+)?val(?:idation)?\b"
                 r"|\bval(?:idation)?[ _](?:data|tokens|set)\b"),
    ("calibration", r"\bcalibrat\w*"),
    ("GPTQ", r"\bGPTQ\b"),
    ("ETLB / logit bias", r"\bETLB\b|\blogit[ _]bias\b"),
    ("cache", r"\bcache[ds]?\b"),
    ("byte sidecar", r"\bsidecar\b"),
    ("custom tokenizer", r"\bcaseops\b|\bcustom tokeni[sz]er\b|\bnew tokeni[sz]er\b"),
    ("external data", r"\bexternal data\b|\bpretrained\b|\bpre-trained\b"),
    ("seed selection", r"\bbest\s+(?:\d+|of\s+\d+)\s+(?:seeds|runs)\b|\bbest\s+\d+\s+of\s+\d+\b|\b\d+\s+lowest\b"
                       r"|\blowest\s+val_bpb\b|\bcherry[- ]pick"),
    ("multi-epoch", r"\bmulti[- ]epoch\b|\b\d+\s+epochs\b"),
    ("PPM / mixture", r"\bPPM\b|\bmixture\b"),
    ("self-extracting code", r"\bself[- ]extract\w*|\blzma\b.{0,200}\bb85\b|\bbase85\b"),
    ("hardware other than 8xH100", r"\b[1-7]\s*[x×]\s*H100\b|\bA100\b|\bRTX\s*\d{4}\b|\bB200\b|\bH200\b|\bGB10\b"),
    ("wallclock over budget", r"\bexceed\w*\b.{0,40}\b(?:10[- ]minute|600\s*s)\b|\bover (?:the )?(?:10[- ]minute|600\s*s)"),
))


@dataclass(frozen=True)
class NumberMention:
    value: float
    line: int
    text: str
    kind: str  # "headline" | "table" | "mention"
    # added field
    in_code: bool = False  # inside a fenced code block (log excerpts, commands)


@dataclass
class ReadmeClaims:
    title: str | None = None
    headline_bpb: NumberMention | None = None
    bpb_mentions: list[NumberMention] = field(default_factory=list)
    seed_bpb: dict[int, NumberMention] = field(default_factory=dict)
    mean_bpb: NumberMention | None = None
    keywords: list[tuple[str, int]] = field(default_factory=list)
    # added fields
    title_line: int | None = None
    headline_reason: str = ""
    seed_table_column: str | None = None  # header of the table column the per-seed values came from


def _clean(line: str) -> str:
    """Markdown escapes removed, so that 'val\\_bpb' reads as 'val_bpb'."""
    return line.replace("\\_", "_").replace("\\*", "*").replace("&nbsp;", " ")


def _plausible(value: float) -> bool:
    return _BPB_MIN <= value <= _BPB_MAX


def _first_bpb(text: str, patterns: tuple[re.Pattern[str], ...] = (_BPB_STATEMENT, _NUMBER_THEN_BPB)) -> float | None:
    for pattern in patterns:
        for m in pattern.finditer(text):
            value = float(m.group(1))
            if _plausible(value):
                return value
    return None


def _split_row(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [c.strip() for c in cells]


def _cell_text(cell: str) -> str:
    return cell.replace("**", "").replace("`", "").strip()


def _cell_number(cell: str) -> float | None:
    m = re.search(_BPB_NUMBER, _cell_text(cell))
    if m is None:
        return None
    value = float(m.group(1))
    return value if _plausible(value) else None


# Columns that hold something other than the final score, even though they mention bpb.
_SIDE_COLUMN = re.compile(r"pre[- ]?(?:quant|ttt|ema)|post[- ]?ema|gain|delta|\bstd\b|gap|roundtrip|\brt\b|"
                          r"standard|baseline|diff|\bloss\b", re.IGNORECASE)
# Columns that name the final evaluation.
_FINAL_COLUMN = re.compile(r"sliding|ttt|post|final|score|quantized", re.IGNORECASE)


def _header_words(cell: str) -> str:
    return _cell_text(_clean(cell)).replace("_", " ")


def _column_values(rows: list[tuple[int, list[str]]], column: int, seed_column: int) -> tuple[list[float], float | None]:
    """Per-seed values of one column, and its value in a Mean row (if any)."""
    values: list[float] = []
    mean_value = None
    for _, cells in rows:
        if column >= len(cells) or seed_column >= len(cells):
            continue
        value = _cell_number(cells[column])
        if value is None:
            continue
        label = _cell_text(cells[seed_column])
        if _SEED_VALUE.fullmatch(label):
            values.append(value)
        elif _MEAN_WORD.search(label) and mean_value is None:
            mean_value = value
    return values, mean_value


def _score_column(header: list[str], rows: list[tuple[int, list[str]]], seed_column: int,
                  headline: float | None) -> int | None:
    """The column holding each seed's scored val_bpb.

    First choice: the column whose mean matches the README headline. Then a bold header, then a
    header naming the final evaluation (sliding, TTT, post-quant), then the last plain bpb column.
    Side figures (pre-quant, roundtrip, gains, deltas) are never chosen.
    """
    candidates = [i for i, cell in enumerate(header)
                  if re.search(r"\bbp[bp]\b|bpb", _header_words(cell), re.IGNORECASE)
                  and not _SIDE_COLUMN.search(_header_words(cell))]
    if not candidates:
        return None
    if headline is not None:
        for i in candidates:
            values, mean_value = _column_values(rows, i, seed_column)
            if mean_value is None and values:
                mean_value = sum(values) / len(values)
            if mean_value is not None and abs(mean_value - headline) <= 6e-4:
                return i
    bold = [i for i in candidates if "**" in header[i]]
    if bold:
        return bold[-1]
    final = [i for i in candidates if _FINAL_COLUMN.search(_header_words(header[i]))]
    return final[-1] if final else candidates[-1]


# A markdown table: (line number, cells) per row, header first, separator row left out.
_Table = list[tuple[int, list[str]]]


def parse_readme(text: str) -> ReadmeClaims:
    """Claims of one README. Never raises; an empty or odd README gives empty claims."""
    claims = ReadmeClaims()
    if not isinstance(text, str) or not text:
        return claims
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    in_code = False
    mean_in_text: NumberMention | None = None
    tables: list[_Table] = []
    current: _Table | None = None
    nonblank_seen = 0
    mentions: list[NumberMention] = []

    for number, raw_line in enumerate(lines, 1):
        if len(raw_line) > 20_000:
            continue
        line = _clean(raw_line)
        fence = _FENCE.match(line)
        if fence:
            rest = line.strip()[3:]
            # "```bash pip install x```" on one line is inline code, not a fence (an opening
            # fence's info string holds no backticks); a closing fence holds nothing else.
            if (in_code and not rest.strip("`~ \t")) or (not in_code and "`" not in rest):
                in_code = not in_code
                current = None
                continue
        stripped = line.strip()
        if not stripped:
            current = None
            continue
        nonblank_seen += 1

        # title: a heading on the first non-blank line (a later "## Method" is a section, not a title)
        if nonblank_seen == 1 and not in_code:
            heading = _HEADING.match(line)
            if heading:
                claims.title = heading.group("title").strip()
                claims.title_line = number

        # tables
        is_row = not in_code and _TABLE_ROW.match(line) is not None
        if is_row:
            if current is None:
                current = []
                tables.append(current)
            if not _TABLE_SEPARATOR.match(line):
                current.append((number, _split_row(line)))
        else:
            current = None

        # keywords (prose and code alike: commands and log excerpts matter too)
        for name, pattern in KEYWORDS:
            if pattern.search(line):
                claims.keywords.append((name, number))

        # headline: title, else an early bold or plain "val_bpb ... X" statement outside tables
        if claims.headline_bpb is None and not in_code and not is_row and number <= _HEADLINE_SCAN_LINES:
            value = None
            reason = ""
            if claims.title_line == number:
                value = _first_bpb(line)
                reason = "title"
            if value is None:
                for span in _BOLD_SPAN.finditer(line):
                    inside = span.group(1)
                    if not _BPB_WORD.search(inside):
                        continue
                    # "**val_bpb: 1.1556**", or a bold label with the number after it: "**val_bpb**: 1.13"
                    value = _first_bpb(inside) or _first_bpb(line[span.start():])
                    if value is not None:
                        reason = "first emphasised val_bpb statement"
                        break
            if value is None and not line.lstrip().startswith(("-", "*", ">")):
                value = _first_bpb(line, (_VAL_BPB_STATEMENT,))
                reason = "first val_bpb statement"
            if value is not None:
                claims.headline_bpb = NumberMention(value, number, stripped, "headline")
                claims.headline_reason = reason

        if mean_in_text is None and not in_code and not is_row and _MEAN_WORD.search(line):
            value = _first_bpb(line, (_VAL_BPB_STATEMENT,))
            if value is not None:
                mean_in_text = NumberMention(value, number, stripped, "mention")

        # every bpb-looking number on a line that talks about bpb
        if not is_row and _BPB_WORD.search(line):
            for m in re.finditer(_BPB_NUMBER, line):
                value = float(m.group(1))
                if _plausible(value):
                    mentions.append(NumberMention(value, number, stripped, "mention", in_code))
            if not in_code:
                for pattern in _SEED_IN_TEXT:
                    for m in pattern.finditer(line):
                        seed, value = int(m.group("seed")), float(m.group(2))
                        if _plausible(value) and seed not in claims.seed_bpb:
                            claims.seed_bpb[seed] = NumberMention(value, number, stripped, "mention")

    _read_tables(tables, claims, mentions)
    claims.bpb_mentions = sorted(mentions, key=lambda m: (m.line, m.kind))

    if claims.mean_bpb is None:
        if claims.headline_bpb is not None and _MEAN_WORD.search(claims.headline_bpb.text):
            claims.mean_bpb = claims.headline_bpb
        else:
            claims.mean_bpb = mean_in_text
    return claims


def _read_tables(tables: list[_Table], claims: ReadmeClaims, mentions: list[NumberMention]) -> None:
    headline = claims.headline_bpb.value if claims.headline_bpb is not None else None
    table_seeds: dict[int, NumberMention] = {}
    for table in tables:
        if len(table) < 2:
            continue
        header = table[0][1]
        data_rows = table[1:]
        bpb_columns = {i for i, cell in enumerate(header) if _BPB_WORD.search(_clean(cell))}
        for line_no, cells in data_rows:
            row_text = "| " + " | ".join(cells) + " |"
            bpb_row = bool(cells) and _BPB_WORD.search(_cell_text(cells[0])) is not None
            for i, cell in enumerate(cells):
                if bpb_row or i in bpb_columns:
                    value = _cell_number(cell)
                    if value is not None:
                        mentions.append(NumberMention(value, line_no, row_text, "table"))

        seed_column = next((i for i, cell in enumerate(header) if _SEED_HEADER.fullmatch(_cell_text(_clean(cell)))), None)
        if seed_column is None:
            continue
        if table_seeds:
            break  # the first table with per-seed values is the results table
        column = _score_column(header, data_rows, seed_column, headline)
        if column is None:
            continue
        for line_no, cells in data_rows:
            if column >= len(cells) or seed_column >= len(cells):
                continue
            value = _cell_number(cells[column])
            if value is None:
                continue
            row_text = "| " + " | ".join(cells) + " |"
            seed_text = _cell_text(cells[seed_column])
            if _SEED_VALUE.fullmatch(seed_text):
                seed = int(seed_text)
                if seed not in table_seeds:
                    table_seeds[seed] = NumberMention(value, line_no, row_text, "table")
                    if claims.seed_table_column is None:
                        claims.seed_table_column = _cell_text(_clean(header[column]))
            elif _MEAN_WORD.search(seed_text) and claims.mean_bpb is None:
                claims.mean_bpb = NumberMention(value, line_no, row_text, "table")
    # table values are more reliable than "seed N: X" prose
    claims.seed_bpb.update(table_seeds)

"""String and bytes literals read without evaluating them, paths modelled below the record
folder (never touching the file system), and the cheap pre-check of whether a file is shaped
like a self-extracting wrapper. Used by the unwrapper's interpreter and the code accounting."""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
from pathlib import PurePosixPath

import libcst as cst

# ---------------------------------------------------------------------------------------
# Literals


class LiteralError(ValueError):
    """A string node is not a plain literal (f-string, mixed str/bytes, bad escape)."""


_ESCAPE_RE = re.compile(
    r"\\(?:(\n)|([\\'\"abfnrtv])|([0-7]{1,3})|x([0-9A-Fa-f]{2})|N\{([^}]*)\}"
    r"|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))",
    re.S,
)
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f",
                   "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape(content: str, is_bytes: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        newline, simple, octal, hex2, named, u4, u8, _other = match.groups()
        if newline is not None:
            return ""
        if simple is not None:
            return _SIMPLE_ESCAPES[simple]
        if octal is not None:
            value = int(octal, 8)
            if is_bytes and value > 0xFF:
                raise LiteralError(f"octal escape \\{octal} out of range in bytes literal")
            return chr(value)
        if hex2 is not None:
            return chr(int(hex2, 16))
        if is_bytes:  # \N, \u and \U are not escapes in bytes literals
            return match.group(0)
        if named is not None:
            try:
                return unicodedata.lookup(named)
            except KeyError:
                raise LiteralError(f"unknown character name \\N{{{named}}}") from None
        if u4 is not None:
            return chr(int(u4, 16))
        if u8 is not None:
            value = int(u8, 16)
            if value > 0x10FFFF:
                raise LiteralError(f"escape \\U{u8} out of range")
            return chr(value)
        return match.group(0)  # an unknown escape keeps its backslash

    return _ESCAPE_RE.sub(replace, content)


def simple_string_value(token: str) -> str | bytes:
    """Value of one string token (prefix, quotes and all), decoded without ``compile``."""
    start = 0
    while start < len(token) and token[start] in "rRbBuUfF":
        start += 1
    prefix = token[:start].lower()
    if "f" in prefix:
        raise LiteralError("f-strings are not literals")
    body = token[start:]
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    if quote not in ('"', "'", '"""', "'''") or len(body) < 2 * len(quote) or not body.endswith(quote):
        raise LiteralError("malformed string token")
    content = body[len(quote):len(body) - len(quote)]
    if "\r" in content:  # the tokenizer reads source with universal newlines
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    is_bytes = "b" in prefix
    if is_bytes and not content.isascii():
        raise LiteralError("bytes literal with non-ASCII characters")
    if "r" not in prefix and "\\" in content:
        content = _unescape(content, is_bytes)
    return content.encode("latin-1") if is_bytes else content


def string_value(node: cst.BaseExpression, max_chars: int | None = None) -> str | bytes:
    """Value of a SimpleString or an implicit concatenation of them (``"a" "b"``)."""
    parts: list[cst.SimpleString] = []
    pending: list[cst.BaseExpression] = [node]
    while pending:  # ConcatenatedString nests to the right; walk it without recursion
        current = pending.pop()
        if isinstance(current, cst.ConcatenatedString):
            pending.append(current.right)
            pending.append(current.left)
        elif isinstance(current, cst.SimpleString):
            parts.append(current)
        elif isinstance(current, cst.FormattedString):
            raise LiteralError("f-strings are not literals")
        else:
            raise LiteralError(f"{type(current).__name__} is not a string literal")
    if max_chars is not None and sum(len(p.value) for p in parts) > max_chars:
        raise LiteralError("string literal too large")
    values = [simple_string_value(p.value) for p in parts]
    if len({type(v) for v in values}) > 1:
        raise LiteralError("cannot mix bytes and str literals")
    return values[0] if len(values) == 1 else values[0][:0].join(values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Folder paths
#
# Paths are modelled as POSIX strings below a sentinel root that stands for the record
# folder, so ``__file__.replace(...)``, ``os.path.join(os.path.dirname(__file__), ...)``
# and pathlib arithmetic can run as pure string operations (PurePosixPath, posixpath),
# never touching the file system. Relative paths are relative to the folder: scripts run
# from inside their record folder.

FOLDER_ROOT = "/<record>"


def folder_path(relative: str) -> str:
    """The modelled absolute path of a folder file (what ``__file__`` holds)."""
    return posixpath.join(FOLDER_ROOT, relative) if relative else FOLDER_ROOT


def modelled_abspath(path: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(FOLDER_ROOT, path))


def folder_relative(path: str | PurePosixPath) -> str:
    """Relative folder path of a modelled path; ValueError when it leaves the folder."""
    text = str(path)
    if text == FOLDER_ROOT or text.startswith(FOLDER_ROOT + "/"):
        text = text[len(FOLDER_ROOT) + 1:]
    elif text.startswith("/"):
        raise ValueError(f"absolute path {text!r} is outside the record folder")
    normal = posixpath.normpath(text) if text else "."
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"path {str(path)!r} leaves the record folder")
    if normal == ".":
        raise ValueError("path names the record folder itself, not a file")
    return normal


def _human_size(nbytes: int) -> str:
    if nbytes >= 1 << 20 and nbytes % (1 << 20) == 0:
        return f"{nbytes >> 20} MiB"
    if nbytes >= 1 << 10 and nbytes % (1 << 10) == 0:
        return f"{nbytes >> 10} KiB"
    return f"{nbytes} bytes"


# ---------------------------------------------------------------------------------------
# Cheap pre-check

_EXEC_CALL_RE = re.compile(r"\b(?:exec|eval|run_path)\s*\(")
_LOADER_RE = re.compile(
    r"decompress|decode|fromhex|unhexlify|a2b_|Decompressor|decompressobj|loads"
    r"|\bopen\s*\(|read_text|read_bytes|\.read\s*\(|run_path"
)
_DEF_LINE_RE = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]", re.M)
_LONG_TOKEN_RE = re.compile(r"\S{128,}")
_SKELETON_LIMIT = 8192


def looks_like_wrapper(text: str) -> bool:
    """Whether ``text`` might be a wrapper layer and is worth parsing to find out.

    A wrapper calls exec (or eval, run_path) and is small apart from its payload: at most
    two function or class definitions, or a few KiB of code once long whitespace-free runs
    (encoded literals) are dropped when it also mentions a decoder or file reader.
    Readable training scripts fail the test and are returned unparsed.
    """
    if not _EXEC_CALL_RE.search(text):
        return False
    if len(_DEF_LINE_RE.findall(text)) <= 2:
        return True
    if not _LOADER_RE.search(text):
        return False
    skeleton = 0
    for line in _LONG_TOKEN_RE.sub("", text).splitlines():
        stripped = line.strip()
        # a whitespace-free line of 40+ characters is a slice of an encoded literal
        if stripped and (len(stripped) < 40 or any(c in stripped for c in " \t")):
            skeleton += len(stripped)
            if skeleton > _SKELETON_LIMIT:
                return False
    return True

"""Static unwrapping of self-extracting submission code.

Many submissions ship ``train_gpt.py`` as a small wrapper such as::

    import lzma as L,base64 as B
    exec(L.decompress(B.b85decode("..."),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))

or as a stub that executes a sibling file (#1412). The auditor has to read the code that
really runs, but it must never run, import, ``eval`` or ``compile`` submission code. So this
module *interprets* a small whitelisted expression grammar over the libcst tree of the
wrapper: string and bytes literals, import aliases, a few module constants, and calls of
known decoders (lzma, zlib, gzip, bz2, optional brotli, base64/base85/ascii85/base32/hex,
text encodings) and of file readers confined to the record folder. Anything outside the
grammar in a file shaped like a wrapper is an ``UnwrapError``: the auditor fails closed
instead of auditing the wrapper text as if it were the program.

Safety limits, all enforced here:

* decoders run incrementally with ``max_length`` so a decompression bomb stops as soon as
  the total decoded output of all layers passes ``max_output_bytes`` (16 MiB by default);
* at most ``max_depth`` nested layers (8 by default);
* string literals larger than ``max_literal_bytes`` are refused before they are decoded;
* files are read only through the caller's reader, by paths that stay inside the folder.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import importlib.util
import lzma
import os
import posixpath
import re
import site
import stat
import sys
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import libcst as cst

from pgolf_audit.cstutil import SourceParseError, dotted_name, parse_module, visit_readonly
from pgolf_audit.lines import LineTable

DEFAULT_MAX_OUTPUT_BYTES = 16 << 20
DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_FILE_BYTES = 32 << 20

# liblzma allocates the dictionary that a stream header or a raw filter chain asks for.
# Presets top out at 64 MiB; anything far beyond that is not a real wrapper.
LZMA_MEMORY_LIMIT = 256 << 20


# ---------------------------------------------------------------------------------------
# Public result types


@dataclass(frozen=True)
class LayerImport:
    """One import statement of a wrapper layer (imports run, so local ones count as code)."""

    module: str                # dotted module as written, without the leading dots
    names: tuple[str, ...]     # imported names for ``from X import a, b``; empty for ``import X``
    level: int                 # number of leading dots of a relative import
    line: int


@dataclass(frozen=True)
class WrapperLayer:
    file: str                  # file holding this layer, relative to the record folder
    line: int                  # 1-based line of the exec call in that layer's text
    codecs: tuple[str, ...]    # decode chain in application order, e.g. ("base85", "lzma-raw-lzma2")
    description: str           # human words: "lzma (raw LZMA2) + base85"
    output_bytes: int          # size of what this layer decodes to
    sibling: str | None = None            # file this layer reads and runs (exec stubs)
    imports: tuple[LayerImport, ...] = ()  # the layer's own import statements


@dataclass
class UnwrappedCode:
    entry: str                  # submitted entry file name, e.g. "train_gpt.py"
    entry_bytes: int            # raw bytes of the entry file on disk
    origin: str                 # file whose decoded text is the final source
    source: str                 # final readable source
    layers: list[WrapperLayer]  # empty when the entry is plain source
    module: cst.Module | None   # parsed final source when the unwrapper had to parse it
    runtime_file: str = ""      # what ``__file__`` names while the final source runs

    def __post_init__(self) -> None:
        if not self.runtime_file:
            self.runtime_file = self.origin

    @property
    def wrapped(self) -> bool:
        return bool(self.layers)

    def wrapper_name(self) -> str | None:
        if not self.layers:
            return None
        first = self.layers[0]
        if first.sibling is not None and not first.codecs:
            name = f"exec stub in {first.file} running {first.sibling}"
        else:
            name = f"{first.description} self-extracting wrapper in {first.file}"
        if len(self.layers) > 1:
            name += f" ({len(self.layers)} layers: " + "; ".join(layer.description for layer in self.layers) + ")"
        return name


class UnwrapError(Exception):
    """A wrapper could not be interpreted. ``line`` is a line of the layer's text (``layer``
    counts decoded layers: 0 is the file as stored)."""

    def __init__(self, message: str, file: str, line: int | None = None, layer: int = 0):
        self.message = message
        self.file = file
        self.line = line
        self.layer = layer
        where = file if layer == 0 else f"{file} (decoded layer {layer})"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


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


# ---------------------------------------------------------------------------------------
# Values of the interpreted grammar


@dataclass(frozen=True)
class _ModuleRef:
    name: str


@dataclass(frozen=True)
class _FunctionRef:
    name: str  # qualified: "lzma.decompress", "builtins.exec", "bytes.fromhex"


@dataclass(frozen=True)
class _BoundMethod:
    owner: object
    name: str


@dataclass(frozen=True)
class _Unresolved:
    """An imported name the grammar does not model; using it is an error."""

    name: str


@dataclass(frozen=True)
class _OpenFile:
    path: str       # folder-relative
    binary: bool


@dataclass(frozen=True)
class _CodeObject:
    """What ``compile(x, name, "exec")`` would return; exec of it runs ``source``."""

    source: str | bytes


@dataclass(frozen=True)
class _Namespace:
    """``globals()``, ``locals()`` or a literal dict handed to exec as its namespace."""


@dataclass
class _DecompressorObject:
    codec: str        # "lzma", "zlib" or "bz2"
    options: dict


_MODELLED_MODULES = {
    "lzma", "zlib", "gzip", "bz2", "brotli", "base64", "binascii", "codecs", "os", "os.path",
    "pathlib", "runpy", "builtins", "io", "importlib", "sys",
}

_MODULE_FUNCTIONS = {
    "lzma": {"decompress", "LZMADecompressor"},
    "zlib": {"decompress", "decompressobj"},
    "gzip": {"decompress"},
    "bz2": {"decompress", "BZ2Decompressor"},
    "brotli": {"decompress"},
    "base64": {"b85decode", "b64decode", "standard_b64decode", "urlsafe_b64decode", "a85decode",
               "b32decode", "b32hexdecode", "b16decode", "decodebytes"},
    "binascii": {"a2b_base64", "a2b_hex", "unhexlify"},
    "codecs": {"decode", "encode"},
    "os": {"fspath", "getcwd"},
    "os.path": {"join", "dirname", "basename", "abspath", "realpath", "normpath"},
    "pathlib": {"Path", "PurePath", "PosixPath", "PurePosixPath"},
    "runpy": {"run_path"},
    "builtins": {"exec", "eval", "compile", "open", "bytes", "bytearray", "str", "globals",
                 "locals", "vars", "dict", "__import__"},
    "io": {"open"},
    "importlib": {"import_module"},
}
_SUBMODULES = {"os": {"path"}}
_MODULE_CONSTANTS = {
    "lzma": re.compile(r"(?:FORMAT|FILTER|CHECK|PRESET|MODE|MF)_[A-Z0-9_]+"),
    "zlib": re.compile(r"MAX_WBITS|DEF_BUF_SIZE"),
}
_BUILTIN_NAMES = _MODULE_FUNCTIONS["builtins"]
# imported while the interpreter starts, so a same-named file in the folder cannot replace them
_PRELOADED_MODULES = {"builtins", "sys", "os", "io", "codecs"}

_EXEC_FUNCTIONS = {"builtins.exec", "builtins.eval", "runpy.run_path"}

# last name of calls that decode data; an exec of one of these is a wrapper, not plain code
_DECODER_CALL_NAMES = (
    _MODULE_FUNCTIONS["base64"] | _MODULE_FUNCTIONS["binascii"]
    | {"decompress", "fromhex", "LZMADecompressor", "decompressobj", "BZ2Decompressor", "loads"}
)

_BASE64_CODECS = {
    "b85decode": "base85", "b64decode": "base64", "standard_b64decode": "base64",
    "decodebytes": "base64", "urlsafe_b64decode": "base64-urlsafe", "a85decode": "ascii85",
    "b32decode": "base32", "b32hexdecode": "base32hex", "b16decode": "base16",
}
_BASE64_KEYWORDS = {
    "b64decode": {"altchars", "validate"}, "a85decode": {"foldspaces", "adobe", "ignorechars"},
    "b32decode": {"casefold", "map01"}, "b32hexdecode": {"casefold"}, "b16decode": {"casefold"},
}

_TEXT_ENCODINGS = {
    "utf-8": "utf-8", "utf8": "utf-8", "utf_8": "utf-8", "u8": "utf-8", "ascii": "ascii",
    "us-ascii": "ascii", "latin-1": "latin-1", "latin1": "latin-1", "latin_1": "latin-1",
    "iso-8859-1": "latin-1", "iso8859-1": "latin-1", "cp1252": "cp1252",
}
_ERROR_HANDLERS = {"strict", "ignore", "replace", "surrogateescape", "backslashreplace"}

_LZMA_FILTER_NAMES = {getattr(lzma, n): n[len("FILTER_"):] for n in dir(lzma) if n.startswith("FILTER_")}
_LZMA_FILTER_KEYS = {"id", "preset", "dict_size", "lc", "lp", "pb", "mode", "nice_len", "mf",
                     "depth", "dist", "start_offset"}
_LZMA_PRESET_DICT = [1 << 18, 1 << 20, 1 << 21, 1 << 22, 1 << 22, 1 << 23, 1 << 23, 1 << 24, 1 << 25, 1 << 26]
_XZ_MAGIC = b"\xfd7zXZ\x00"


def describe_codecs(codecs: tuple[str, ...], sibling: str | None = None) -> str:
    """Human words for a decode chain, outermost call first: "lzma (raw LZMA2) + base85"."""
    words = [_codec_words(tag) for tag in reversed(codecs)]
    if sibling is not None:
        return (" + ".join(words) + f" of {sibling}") if words else f"exec of {sibling}"
    return " + ".join(words) if words else "string literal"


def _codec_words(tag: str) -> str:
    fixed = {
        "lzma-xz": "lzma (xz)", "lzma-alone": "lzma (alone)", "zlib-raw": "zlib (raw deflate)",
        "zlib-gzip": "zlib (gzip)", "zlib-auto": "zlib (zlib or gzip)", "base64-urlsafe": "urlsafe base64",
    }
    if tag in fixed:
        return fixed[tag]
    if tag.startswith("lzma-raw-"):
        chain = "+".join(name.upper() if name.startswith("lzma") else name for name in tag[len("lzma-raw-"):].split("+"))
        return f"lzma (raw {chain})"
    return tag


# ---------------------------------------------------------------------------------------
# Optional brotli


def _load_brotli():
    """The installed ``brotli`` module, or None.

    Only a module installed with the interpreter (site-packages or the standard prefix) is
    imported, so a ``brotli.py`` in the working directory, such as a submission's
    shadowing file, is never run.
    """
    try:
        spec = importlib.util.find_spec("brotli")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin).resolve()
    trusted: list[str] = list(site.getsitepackages()) + [site.getusersitepackages(),
                                                          sys.prefix, sys.base_prefix, sys.exec_prefix]
    if not any(origin.is_relative_to(Path(root).resolve()) for root in trusted if root):
        return None
    try:
        return importlib.import_module("brotli")
    except ImportError:
        return None


# ---------------------------------------------------------------------------------------
# Layer classification


@dataclass
class _Statement:
    kind: str                     # import, assign, augassign, doc, pass, exec, with-exec, other
    node: cst.CSTNode             # the small statement (or With / exec Call)
    top: cst.BaseStatement        # the enclosing element of module.body
    call: cst.Call | None = None  # for exec and with-exec


_MAIN_GUARD = ('__name__', '"__main__"')


def _is_main_guard(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    target = test.comparisons[0]
    if not isinstance(target.operator, cst.Equal):
        return False
    sides = [test.left, target.comparator]
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    strings = [s for s in sides if isinstance(s, cst.SimpleString)]
    if len(names) != 1 or len(strings) != 1:
        return False
    try:
        return simple_string_value(strings[0].value) == "__main__"
    except LiteralError:
        return False


def _import_aliases(module: cst.Module) -> dict[str, str]:
    """Local name -> qualified name for the module's top-level imports (for callee lookup)."""
    aliases: dict[str, str] = {}
    for top in module.body:
        lines = [top] if isinstance(top, cst.SimpleStatementLine) else []
        if isinstance(top, cst.If) and isinstance(top.body, cst.IndentedBlock):
            lines = [s for s in top.body.body if isinstance(s, cst.SimpleStatementLine)]
        for line in lines:
            for small in line.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        full = dotted_name(alias.name) or ""
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            aliases[alias.asname.name.value] = full
                        else:
                            aliases[full.split(".")[0]] = full.split(".")[0]
                elif isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None:
                    base = dotted_name(small.module) or ""
                    if isinstance(small.names, cst.ImportStar):
                        continue
                    for alias in small.names:
                        name = dotted_name(alias.name) or ""
                        local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
                        aliases[local] = f"{base}.{name}"
    return aliases


def _callee_name(func: cst.BaseExpression, aliases: dict[str, str]) -> str | None:
    """Qualified name of a call's target through import aliases ("exec" -> "builtins.exec")."""
    name = dotted_name(func)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in aliases:
        name = aliases[head] + ("." + rest if rest else "")
    elif head in _BUILTIN_NAMES:
        name = "builtins." + name
    return name


def _is_exec_call(node: cst.BaseExpression, aliases: dict[str, str]) -> bool:
    return isinstance(node, cst.Call) and _callee_name(node.func, aliases) in _EXEC_FUNCTIONS


def _classify_small(small: cst.BaseSmallStatement, top: cst.BaseStatement, aliases: dict[str, str]) -> _Statement:
    if isinstance(small, (cst.Import, cst.ImportFrom)):
        return _Statement("import", small, top)
    if isinstance(small, cst.Pass):
        return _Statement("pass", small, top)
    if isinstance(small, cst.Assign) and all(isinstance(t.target, cst.Name) for t in small.targets):
        return _Statement("assign", small, top)
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
        return _Statement("assign", small, top)
    if isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name) and isinstance(small.operator, cst.AddAssign):
        return _Statement("augassign", small, top)
    if isinstance(small, cst.Expr):
        if isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
            return _Statement("doc", small, top)
        if _is_exec_call(small.value, aliases):
            return _Statement("exec", small, top, call=small.value)  # type: ignore[arg-type]
    return _Statement("other", small, top)


def _classify_module(module: cst.Module) -> list[_Statement]:
    aliases = _import_aliases(module)
    statements: list[_Statement] = []
    for top in module.body:
        if isinstance(top, cst.SimpleStatementLine):
            statements.extend(_classify_small(small, top, aliases) for small in top.body)
        elif isinstance(top, cst.If) and top.orelse is None and _is_main_guard(top.test) and isinstance(top.body, cst.IndentedBlock):
            for inner in top.body.body:
                if isinstance(inner, cst.SimpleStatementLine):
                    statements.extend(_classify_small(small, top, aliases) for small in inner.body)
                else:
                    statements.append(_Statement("other", inner, top))
        elif isinstance(top, cst.With) and len(top.items) == 1 and isinstance(top.body, cst.IndentedBlock):
            inner_kinds = [_classify_small(small, top, aliases)
                           for line in top.body.body if isinstance(line, cst.SimpleStatementLine)
                           for small in line.body]
            simple_only = all(isinstance(line, cst.SimpleStatementLine) for line in top.body.body)
            execs = [s for s in inner_kinds if s.kind == "exec"]
            if simple_only and len(execs) == 1 and all(s.kind in ("exec", "import", "pass") for s in inner_kinds):
                statements.append(_Statement("with-exec", top, top, call=execs[0].call))
            else:
                statements.append(_Statement("other", top, top))
        else:
            statements.append(_Statement("other", top, top))
    return statements


def _contains_decoder_call(node: cst.CSTNode) -> bool:
    pending: list[cst.CSTNode] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Call):
            name = dotted_name(current.func)
            if name is not None and name.rsplit(".", 1)[-1] in _DECODER_CALL_NAMES:
                return True
        pending.extend(current.children)
    return False


# ---------------------------------------------------------------------------------------
# Source checks before any parse, and code that runs data (hidden code)

_UTF8_NAMES = {"utf-8", "utf8", "utf_8", "u8", "utf", "cp65001", "utf-8-sig", "utf8-sig", "utf_8_sig"}
_COOKIE_RE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT_RE = re.compile(r"^[ \t\f]*(?:#.*)?$")

# CPython refuses more than 200 nested brackets ("too many nested parentheses"), so deeper
# nesting is not a program Python runs; libcst crashes or takes minutes on far less deep input.
MAX_BRACKET_DEPTH = 200
# Operators in one expression without a separator (1+1+...): libcst's time grows faster than
# linearly with the chain (2,000 terms take about a second, 20,000 more than five minutes).
MAX_OPERATOR_CHAIN = 1000
# The largest real training script has under 5,000 lines; libcst needs seconds per 10,000.
MAX_SOURCE_LINES = 30000
_SHAPE_TOKEN_RE = re.compile(
    r"""(?P<string>[rRbBuUfF]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*"))"""
    r"|(?P<comment>\#[^\n]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<sep>[,;:\n]|=(?!=))"
    r"|(?P<op>\*\*|//|<<|>>|[-+*/%@&|^~<>]|==|!=|\band\b|\bor\b|\bnot\b)",
    re.S,
)


def coding_cookie(text: str) -> str | None:
    """The encoding a coding cookie in the first two lines declares (PEP 263), lower-cased."""
    for line in text.split("\n", 2)[:2]:
        match = _COOKIE_RE.match(line)
        if match:
            return match.group(1).lower()
        if not _BLANK_OR_COMMENT_RE.match(line.rstrip("\r")):
            return None
    return None


def check_source_shape(text: str, file: str, layer: int = 0, *, from_file: bool = True) -> None:
    """Refuse, before libcst sees it, source that the audit cannot read as Python reads it:
    a coding cookie other than UTF-8 (``# coding: utf-7`` makes Python read statements where
    a UTF-8 reader sees a comment), bracket nesting past CPython's own limit, or an operator
    chain long enough to stall the parser. ``from_file``: the text is a file that Python
    decodes by its cookie (exec of a str ignores the cookie)."""
    if from_file:
        declared = coding_cookie(text)
        if declared is not None and declared not in _UTF8_NAMES and not (declared in ("ascii", "us-ascii") and text.isascii()):
            raise UnwrapError(f"declares the source encoding {declared!r}; only UTF-8 source can be read as Python reads it",
                              file, 1, layer)
    lines = text.count("\n") + 1
    if lines > MAX_SOURCE_LINES:
        raise UnwrapError(f"{lines:,} lines (more than {MAX_SOURCE_LINES:,}); too large to analyse", file, None, layer)
    depth = chain = 0
    line = 1
    for match in _SHAPE_TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise UnwrapError(f"brackets nested more than {MAX_BRACKET_DEPTH} deep (Python itself refuses this)",
                                  file, line, layer)
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "sep":
            chain = 0
        elif kind == "op":
            chain += 1
            if chain > MAX_OPERATOR_CHAIN:
                line = text.count("\n", 0, match.start()) + 1
                raise UnwrapError(f"an expression chains more than {MAX_OPERATOR_CHAIN} operators; too large to analyse",
                                  file, line, layer)


# Cheap test for code that could run data: a name of an exec-like builtin (not an attribute
# such as model.eval), the builtins namespace, or lookups that can reach it.
_RUNS_DATA_HINT_RE = re.compile(
    r"(?<![\w.])(?:exec|eval|compile|__import__|__builtins__|builtins|run_path|run_module|getattr|vars|globals|locals)\b"
    r"|__dict__|\bsys\s*\.\s*modules\b|\bmarshal\b|\bimport_module\b"
)
_EXEC_BUILTINS = {"exec", "eval", "compile", "__import__"}
_RUNS_DATA_FUNCTIONS = {"builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__",
                        "runpy.run_path", "runpy.run_module", "importlib.import_module", "marshal.loads",
                        "types.FunctionType", "types.CodeType"}
_BUILTINS_NAMESPACE = {"builtins", "__builtins__"}
_HIDDEN_NAME_STRINGS = {"__builtins__", "builtins", "__import__"}


@dataclass(frozen=True)
class DataRunningCall:
    """A place where the code reaches exec/eval/compile (or the builtins namespace) in a way
    that runs something other than a literal."""

    line: int | None
    code: str
    top: cst.BaseStatement
    node: cst.CSTNode


class _RunsDataScanner:
    """Finds references to exec-like callables however they are spelled: direct calls, import
    aliases, assigned aliases (``run = exec``), the builtins module or ``__builtins__`` reached
    by attribute, ``getattr``, ``vars(...)[...]`` or a string key. A call of such a callable
    with only literal arguments (``exec("x = 1")``) is readable and is not reported."""

    def __init__(self, module: cst.Module):
        self.module = module
        self.aliases: dict[str, str] = {}   # local name -> qualified callable/module it names
        self.defined: set[str] = set()      # names the module defines itself (def, class, other assignments)
        self.found: list[tuple[cst.CSTNode, cst.BaseStatement]] = []
        self.top: cst.BaseStatement | None = None
        self.literal_calls: set[int] = set()   # ids of callee nodes called with literal arguments only
        self.binding_names: set[int] = set()   # ids of Name nodes that name a def, class, parameter or keyword

    def scan(self) -> list[tuple[cst.CSTNode, cst.BaseStatement]]:
        # import aliases from the top level (no walk of the tree: one walk, below, is the
        # cost); an alias made elsewhere (run = exec) is itself a reported reference
        collector = _BindingCollector(self)
        for top in self.module.body:
            if isinstance(top, cst.SimpleStatementLine):
                for small in top.body:
                    if isinstance(small, cst.Import):
                        collector.visit_Import(small)
                    elif isinstance(small, cst.ImportFrom):
                        collector.visit_ImportFrom(small)
                    elif isinstance(small, cst.Assign):
                        collector.visit_Assign(small)
        # module-level definitions shadow a builtin of the same name (methods named eval do not)
        for top in self.module.body:
            if isinstance(top, (cst.FunctionDef, cst.ClassDef)) and top.name.value not in self.aliases:
                self.defined.add(top.name.value)
            elif isinstance(top, cst.SimpleStatementLine):
                for small in top.body:
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else []
                    self.defined.update(t.value for t in targets if isinstance(t, cst.Name) and t.value not in self.aliases)
        for top in self.module.body:
            self.top = top
            visit_readonly(top, self)
        return self.found

    def resolve(self, node: cst.BaseExpression) -> str | None:
        """Qualified name an expression refers to, through import and assignment aliases."""
        if isinstance(node, cst.Name):
            if node.value in self.aliases:
                return self.aliases[node.value]
            if node.value in self.defined:
                return None
            if node.value in _EXEC_BUILTINS:
                return "builtins." + node.value
            if node.value == "__builtins__":
                return "builtins"
            return node.value
        if isinstance(node, cst.Attribute):
            owner = self.resolve(node.value)
            return f"{owner}.{node.attr.value}" if owner is not None else None
        return None

    def dangerous(self, node: cst.BaseExpression) -> bool:
        name = self.resolve(node)
        if name is None:
            return False
        return name in _RUNS_DATA_FUNCTIONS or name in _BUILTINS_NAMESPACE or name.startswith("builtins.__dict__")

    def report(self, node: cst.CSTNode) -> None:
        assert self.top is not None
        self.found.append((node, self.top))

    def visit_Call(self, node: cst.Call) -> bool | None:
        args_literal = all(isinstance(arg.value, (cst.SimpleString, cst.ConcatenatedString, cst.Integer))
                           and arg.star == "" for arg in node.args)
        func = node.func
        if self.dangerous(func):
            name = self.resolve(func) or ""
            if args_literal and name not in _BUILTINS_NAMESPACE and not self.names_builtins(node):
                self.literal_calls.add(id(func))
            else:
                self.report(node)
                return False
        for arg in node.args:  # an exec-like callable handed to other code
            if self.dangerous(arg.value):
                self.report(arg.value)
        if isinstance(func, cst.Name) and func.value == "getattr" and "getattr" not in self.defined and len(node.args) >= 2:
            owner, attr = node.args[0].value, node.args[1].value
            attr_value = _literal_text(attr)
            if self.dangerous(owner) or (attr_value is not None and attr_value in _EXEC_BUILTINS | _HIDDEN_NAME_STRINGS):
                self.report(node)
                return False
        return None

    def names_builtins(self, node: cst.Call) -> bool:
        return any(_literal_text(arg.value) in _HIDDEN_NAME_STRINGS for arg in node.args)

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self.literal_calls or id(node) in self.binding_names:
            return
        name = self.resolve(node)
        # compile is also a common flag or parameter name: reported where it is called,
        # aliased or handed on, not where a value of that name is merely tested
        if name in _BUILTINS_NAMESPACE or (self.dangerous(node) and name != "builtins.compile"):
            self.report(node)

    def visit_Attribute(self, node: cst.Attribute) -> bool | None:
        if id(node) in self.literal_calls:
            return False
        if self.dangerous(node):
            self.report(node)
            return False
        if self.resolve(node.value) not in _BUILTINS_NAMESPACE:  # builtins.print: a named, harmless builtin
            visit_readonly(node.value, self)  # the attribute's own name (model.eval) is no reference
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.binding_names.add(id(target.target))  # a name assigned to is no reference
        if self.dangerous(node.value):  # run = exec
            self.report(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.binding_names.add(id(node.target))  # a dataclass field named eval

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.binding_names.add(id(node.name))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.binding_names.add(id(node.name))

    def visit_Param(self, node: cst.Param) -> None:
        self.binding_names.add(id(node.name))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.binding_names.add(id(node.keyword))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if _literal_text(node) in _HIDDEN_NAME_STRINGS:
            self.report(node)

    def visit_Import(self, node: cst.Import) -> bool:
        # the builtins module under any name reaches exec; an import inside a function is
        # not in the top-level alias table, so it is reported where it is made
        if any((dotted_name(alias.name) or "") == "builtins" for alias in node.names):
            self.report(node)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        base = dotted_name(node.module) if node.module is not None and not node.relative else None
        if base is not None and not isinstance(node.names, cst.ImportStar):
            if any(f"{base}.{dotted_name(alias.name)}" in _RUNS_DATA_FUNCTIONS for alias in node.names):
                self.report(node)
        elif base == "builtins":  # from builtins import *
            self.report(node)
        return False


class _BindingCollector:
    """Top-level aliases: imports and ``name = <exec-like>`` assignments."""

    def __init__(self, scanner: _RunsDataScanner):
        self.scanner = scanner

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scanner.aliases[alias.asname.name.value] = full
            else:
                head = full.split(".")[0]
                self.scanner.aliases[head] = head
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return False
        base = dotted_name(node.module) or ""
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            self.scanner.aliases[local] = f"{base}.{name}"
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.bind(target.target, node.value)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.bind(node.target, node.value)

    def bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if not isinstance(target, cst.Name):
            return
        resolved = self.scanner.resolve(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
        if resolved is not None and (resolved in _RUNS_DATA_FUNCTIONS or resolved in _BUILTINS_NAMESPACE):
            self.scanner.aliases[target.value] = resolved


def _literal_text(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        try:
            value = simple_string_value(node.value)
        except LiteralError:
            return None
        return value if isinstance(value, str) else None
    return None


def calls_running_data(module: cst.Module) -> list[DataRunningCall]:
    """Every place where ``module`` reaches exec/eval/compile or the builtins namespace other
    than by a call with literal arguments, in source order."""
    found = _RunsDataScanner(module).scan()
    if not found:
        return []
    positions = LineTable(module)
    out = []
    for node, top in found:
        text = " ".join(module.code_for_node(node).split())
        out.append(DataRunningCall(positions.line_of(node, top), text if len(text) <= 80 else text[:77] + "...", top, node))
    return out


# ---------------------------------------------------------------------------------------
# The interpreter of one layer


@dataclass
class _Limits:
    read_sibling: Callable[[str], str | bytes | None]
    max_output_bytes: int
    max_literal_bytes: int
    remaining: int            # decoded-output budget left for all layers together


@dataclass
class _LayerResult:
    layer: WrapperLayer
    text: str
    next_file: str
    next_runtime_file: str


class _LayerInterpreter:
    """Interprets one wrapper layer. Never runs anything: every call goes through the
    dispatch below, which knows a fixed set of pure decoders and confined file reads."""

    def __init__(self, limits: _Limits, file: str, runtime_file: str, module: cst.Module, layer_index: int):
        self.limits = limits
        self.file = file
        self.runtime_file = runtime_file
        self.module = module
        self.layer_index = layer_index
        self.positions = LineTable(module)  # wrapper layers are a few lines
        self.env: dict[str, object] = {}
        self.star_modules: list[str] = []
        self.codecs: list[str] = []
        self.reads: list[str] = []
        self.imports: list[LayerImport] = []
        self.top: cst.CSTNode | None = None
        self.last_unused = b""

    # -- errors and lines ----------------------------------------------------------------

    def line_of(self, node: cst.CSTNode) -> int | None:
        return self.positions.line_of(node, self.top)

    def error(self, node: cst.CSTNode, message: str) -> UnwrapError:
        return UnwrapError(message, self.file, self.line_of(node), self.layer_index)

    def code(self, node: cst.CSTNode, limit: int = 60) -> str:
        text = " ".join(self.module.code_for_node(node).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    # -- statements ----------------------------------------------------------------------

    def run(self, statements: list[_Statement]) -> _LayerResult:
        result: tuple[str, str, str] | None = None
        exec_line = 0
        for statement in statements:
            self.top = statement.top
            if statement.kind == "import":
                self.bind_import(statement.node)  # type: ignore[arg-type]
            elif statement.kind == "assign":
                self.assign(statement.node)
            elif statement.kind == "augassign":
                node = statement.node
                assert isinstance(node, cst.AugAssign) and isinstance(node.target, cst.Name)
                name = node.target.value
                if name not in self.env:
                    raise self.error(node, f"'{name} +=' before {name} is bound")
                self.env[name] = self.add(self.env[name], self.eval(node.value), node)
            elif statement.kind in ("exec", "with-exec"):
                assert statement.call is not None
                exec_line = self.line_of(statement.call) or 0
                if statement.kind == "with-exec":
                    self.bind_with(statement.node)  # type: ignore[arg-type]
                result = self.run_exec(statement.call)
        assert result is not None
        text, next_file, next_runtime_file = result
        codecs = tuple(self.codecs)
        sibling = self.reads[0] if self.reads else None
        layer = WrapperLayer(
            file=self.file,
            line=exec_line,
            codecs=codecs,
            description=describe_codecs(codecs, sibling),
            output_bytes=len(text.encode("utf-8", "surrogatepass")),
            sibling=sibling,
            imports=tuple(self.imports),
        )
        return _LayerResult(layer, text, next_file, next_runtime_file)

    def bind_import(self, node: cst.Import | cst.ImportFrom) -> None:
        line = self.line_of(node) or 0
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name) or ""
                self.imports.append(LayerImport(full, (), 0, line))
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.env[alias.asname.name.value] = self.module_value(full, node)
                else:
                    head = full.split(".")[0]
                    self.env[head] = self.module_value(head, node)
            return
        base = dotted_name(node.module) if node.module is not None else ""
        level = len(node.relative)
        if isinstance(node.names, cst.ImportStar):
            self.imports.append(LayerImport(base or "", ("*",), level, line))
            if level == 0 and base in _MODELLED_MODULES:
                self.check_not_shadowed(base, node)
                self.star_modules.append(base)
            return
        names = tuple(dotted_name(alias.name) or "" for alias in node.names)
        self.imports.append(LayerImport(base or "", names, level, line))
        for alias, name in zip(node.names, names):
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            if level or base not in _MODELLED_MODULES:
                self.env[local] = _Unresolved(("." * level) + f"{base}.{name}".strip("."))
            else:
                self.check_not_shadowed(base, node)
                self.env[local] = self.module_member(base, name, None)

    def module_value(self, name: str, node: cst.CSTNode | None = None) -> object:
        if name not in _MODELLED_MODULES:
            return _Unresolved(name)
        self.check_not_shadowed(name, node)
        return _ModuleRef(name)

    def check_not_shadowed(self, name: str, node: cst.CSTNode | None) -> None:
        """The script's folder comes first on sys.path, so a ``base64.py`` shipped in the
        record folder would replace the decoder the wrapper names and run instead of it.
        Interpreting the call with the standard module would then show the wrong code."""
        top = name.split(".")[0]
        if top in _PRELOADED_MODULES:
            return
        for candidate in (f"{top}.py", f"{top}/__init__.py"):
            try:
                present = self.limits.read_sibling(candidate) is not None
            except (OSError, ValueError):
                present = True
            if present:
                message = (f"the record folder has its own {candidate}, which would run instead of the "
                           f"{top} module the wrapper imports")
                if node is None:
                    raise UnwrapError(message, self.file, None, self.layer_index)
                raise self.error(node, message)

    def assign(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Assign):
            value = self.eval(node.value)
            for target in node.targets:
                self.env[target.target.value] = value  # type: ignore[union-attr]
        else:
            assert isinstance(node, cst.AnnAssign) and node.value is not None
            self.env[node.target.value] = self.eval(node.value)  # type: ignore[union-attr]

    def bind_with(self, node: cst.With) -> None:
        item = node.items[0]
        value = self.eval(item.item)
        if not isinstance(value, _OpenFile):
            raise self.error(item.item, f"unsupported context manager {self.code(item.item)} in wrapper")
        if item.asname is not None:
            if not isinstance(item.asname.name, cst.Name):
                raise self.error(item, "unsupported 'with ... as' target")
            self.env[item.asname.name.value] = value

    # -- exec ----------------------------------------------------------------------------

    def run_exec(self, call: cst.Call) -> tuple[str, str, str]:
        """Text that the exec-like call runs, the file holding it and its ``__file__``."""
        callee = self.eval(call.func)
        if not isinstance(callee, _FunctionRef) or callee.name not in _EXEC_FUNCTIONS:
            raise self.error(call, f"unsupported call {self.code(call.func)}() as wrapper exec")
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if any(a.star for a in call.args) or not positional:
            raise self.error(call, f"unsupported arguments to {callee.name.split('.')[-1]}()")

        if callee.name == "runpy.run_path":
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value not in ("run_name", "init_globals"):
                    raise self.error(arg, f"unsupported keyword {arg.keyword.value}= to run_path()")
                if arg is not positional[0]:
                    self.check_namespace_or_literal(arg.value)
            relative = self.path_of(self.eval(positional[0].value), positional[0].value)
            text = self.read_file(relative, binary=False, node=positional[0].value)
            assert isinstance(text, str)
            return text, relative, relative

        if any(a.keyword is not None for a in call.args):
            raise self.error(call, f"unsupported keyword arguments to {callee.name.split('.')[-1]}()")
        if len(positional) > 3:
            raise self.error(call, "too many arguments to exec()")
        for extra in positional[1:]:
            self.check_namespace_or_literal(extra.value)
        payload = self.eval(positional[0].value)
        if callee.name == "builtins.eval":
            if not isinstance(payload, _CodeObject):
                raise self.error(call, "eval() of an expression is not a wrapper layer")
        if isinstance(payload, _CodeObject):
            payload = payload.source
        if isinstance(payload, bytearray):
            payload = bytes(payload)
        if isinstance(payload, bytes):
            text = self.source_from_bytes(payload, call)
        elif isinstance(payload, str):
            text = payload
        else:
            raise self.error(positional[0].value, f"exec argument evaluates to {_type_name(payload)}, not source text")
        if len(set(self.reads)) > 1:
            raise self.error(call, "exec argument combines several files: " + ", ".join(sorted(set(self.reads))))
        next_file = self.reads[0] if self.reads else self.file
        # exec shares the caller's globals, so __file__ stays the caller's
        return text, next_file, self.runtime_file

    def check_namespace_or_literal(self, node: cst.BaseExpression) -> None:
        """Namespaces passed to exec/run_path must be inert: globals(), {...} of literals."""
        value = self.eval(node)
        if isinstance(value, (_Namespace, dict, str, int, type(None))):
            return
        raise self.error(node, f"unsupported namespace argument {self.code(node)}")

    def source_from_bytes(self, data: bytes, node: cst.CSTNode) -> str:
        """Decode source bytes as exec would: BOM, then a coding cookie, else UTF-8."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        encoding = "utf-8"
        head = data.split(b"\n", 2)[:2]
        for line in head:
            match = re.match(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line)
            if match:
                declared = match.group(1).decode("ascii").lower()
                if declared not in _TEXT_ENCODINGS:
                    raise self.error(node, f"decoded source declares unsupported encoding {declared!r}")
                encoding = _TEXT_ENCODINGS[declared]
                break
            if not re.match(rb"^[ \t\f]*(?:#.*)?\r?$", line):
                break
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.error(node, f"decoded data is not {encoding} text ({exc.reason} at byte {exc.start})") from None

    # -- expressions ---------------------------------------------------------------------

    def eval(self, node: cst.BaseExpression) -> object:
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            return self.literal(node)
        if isinstance(node, cst.FormattedString):
            raise self.error(node, "f-strings are not supported in wrappers")
        if isinstance(node, cst.Integer):
            try:
                return int(node.value, 0)
            except ValueError:
                raise self.error(node, f"bad integer literal {node.value}") from None
        if isinstance(node, cst.Name):
            return self.lookup(node)
        if isinstance(node, cst.Attribute):
            return self.attribute(self.eval(node.value), node.attr.value, node)
        if isinstance(node, cst.Call):
            return self.call(node)
        if isinstance(node, cst.BinaryOperation):
            return self.binary(node)
        if isinstance(node, cst.UnaryOperation):
            operand = self.eval(node.expression)
            if isinstance(operand, int) and not isinstance(operand, bool):
                if isinstance(node.operator, cst.Minus):
                    return -operand
                if isinstance(node.operator, cst.Plus):
                    return operand
            raise self.error(node, f"unsupported expression {self.code(node)}")
        if isinstance(node, (cst.List, cst.Tuple)):
            items = []
            for element in node.elements:
                if not isinstance(element, cst.Element):
                    raise self.error(node, "starred elements are not supported")
                items.append(self.eval(element.value))
            return items if isinstance(node, cst.List) else tuple(items)
        if isinstance(node, cst.Dict):
            result: dict[object, object] = {}
            for element in node.elements:
                if not isinstance(element, cst.DictElement):
                    raise self.error(node, "'**' in a dict literal is not supported")
                key = self.eval(element.key)
                if not isinstance(key, (str, int)):
                    raise self.error(element.key, "dict keys must be literals")
                result[key] = self.eval(element.value)
            return result
        raise self.error(node, f"unsupported expression {self.code(node)} ({type(node).__name__})")

    def literal(self, node: cst.BaseExpression) -> str | bytes:
        try:
            return string_value(node, self.limits.max_literal_bytes)
        except LiteralError as exc:
            if str(exc) == "string literal too large":
                raise self.error(node, f"string literal larger than the {_human_size(self.limits.max_literal_bytes)} literal limit") from None
            raise self.error(node, str(exc)) from None

    def lookup(self, node: cst.Name) -> object:
        name = node.value
        if name in self.env:
            value = self.env[name]
        elif name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        elif name == "__file__":
            return folder_path(self.runtime_file)
        elif name == "__name__":
            return "__main__"
        elif name in _BUILTIN_NAMES:
            return _FunctionRef("builtins." + name)
        else:
            for star in self.star_modules:
                try:
                    return self.module_member(star, name, node)
                except UnwrapError:
                    continue
            raise self.error(node, f"name {name} is not defined in the wrapper")
        if isinstance(value, _Unresolved):
            raise self.error(node, f"{name} refers to {value.name}, which a wrapper may not use")
        return value

    def module_member(self, module: str, attr: str, node: cst.CSTNode | None) -> object:
        if attr in _SUBMODULES.get(module, ()):
            return _ModuleRef(f"{module}.{attr}")
        if attr in _MODULE_FUNCTIONS.get(module, ()):
            return _FunctionRef(f"{module}.{attr}")
        pattern = _MODULE_CONSTANTS.get(module)
        if pattern is not None and pattern.fullmatch(attr):
            real = {"lzma": lzma, "zlib": zlib}[module]
            value = getattr(real, attr, None)
            if isinstance(value, int):
                return value
        if node is None:
            return _Unresolved(f"{module}.{attr}")
        raise self.error(node, f"unsupported attribute {module}.{attr} in wrapper")

    def attribute(self, owner: object, attr: str, node: cst.Attribute) -> object:
        if isinstance(owner, _ModuleRef):
            return self.module_member(owner.name, attr, node)
        if isinstance(owner, _FunctionRef) and owner.name == "builtins.bytes" and attr == "fromhex":
            return _FunctionRef("bytes.fromhex")
        if isinstance(owner, PurePosixPath):
            if attr == "parent":
                return owner.parent
            if attr in ("name", "stem", "suffix"):
                return getattr(owner, attr)
            if attr in ("with_name", "with_suffix", "joinpath", "resolve", "absolute", "read_text", "read_bytes", "open"):
                return _BoundMethod(owner, attr)
        if isinstance(owner, str) and attr in ("encode", "replace", "strip", "lstrip", "rstrip", "join"):
            return _BoundMethod(owner, attr)
        if isinstance(owner, (bytes, bytearray)) and attr in ("decode", "replace", "strip", "lstrip", "rstrip", "join"):
            return _BoundMethod(bytes(owner), attr)
        if isinstance(owner, _OpenFile) and attr == "read":
            return _BoundMethod(owner, attr)
        if isinstance(owner, _DecompressorObject) and attr == "decompress":
            return _BoundMethod(owner, attr)
        raise self.error(node, f"unsupported attribute {self.code(node)} ({_type_name(owner)}.{attr})")

    def binary(self, node: cst.BinaryOperation) -> object:
        if isinstance(node.operator, cst.Add):
            # flatten a + b + c + ... (left-nested) without recursion
            operands: list[cst.BaseExpression] = []
            current: cst.BaseExpression = node
            while isinstance(current, cst.BinaryOperation) and isinstance(current.operator, cst.Add) and not current.lpar:
                operands.append(current.right)
                current = current.left
            operands.append(current)
            value = self.eval(operands.pop())
            while operands:
                value = self.add(value, self.eval(operands.pop()), node)
            return value
        left, right = self.eval(node.left), self.eval(node.right)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
        if ints and isinstance(node.operator, cst.BitOr):
            return left | right  # type: ignore[operator]
        if ints and isinstance(node.operator, cst.LeftShift) and 0 <= right <= 64:  # type: ignore[operator]
            return left << right  # type: ignore[operator]
        if isinstance(node.operator, cst.Divide) and isinstance(left, PurePosixPath) and isinstance(right, (str, PurePosixPath)):
            return left / right
        raise self.error(node, f"unsupported expression {self.code(node)}")

    def add(self, left: object, right: object, node: cst.CSTNode) -> object:
        if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
            return left + right
        if isinstance(left, (str, bytes)) and type(left) is type(right):
            if len(left) + len(right) > self.limits.max_literal_bytes:  # type: ignore[arg-type]
                raise self.error(node, f"concatenated literal larger than the {_human_size(self.limits.max_literal_bytes)} literal limit")
            return left + right  # type: ignore[operator]
        raise self.error(node, f"cannot add {_type_name(left)} and {_type_name(right)}")

    # -- calls ---------------------------------------------------------------------------

    def call(self, node: cst.Call) -> object:
        try:
            callee = self.eval(node.func)
        except UnwrapError as exc:
            raise self.error(node, f"unsupported call {self.code(node.func)}() in exec argument ({exc.message})") from None
        args: list[object] = []
        kwargs: dict[str, object] = {}
        for arg in node.args:
            if arg.star:
                raise self.error(node, f"unsupported *args in call {self.code(node.func)}()")
            value = self.eval(arg.value)
            if arg.keyword is not None:
                kwargs[arg.keyword.value] = value
            else:
                args.append(value)
        if isinstance(callee, _FunctionRef):
            return self.call_function(callee.name, args, kwargs, node)
        if isinstance(callee, _BoundMethod):
            return self.call_method(callee, args, kwargs, node)
        raise self.error(node, f"unsupported call {self.code(node.func)}() in exec argument")

    def unsupported(self, node: cst.Call) -> UnwrapError:
        return self.error(node, f"unsupported call {self.code(node.func)}() in exec argument")

    def expect(self, node: cst.Call, args: list[object], kwargs: dict[str, object], names: tuple[str, ...],
               required: int, defaults: dict[str, object] | None = None) -> list[object]:
        """Bind call arguments to parameter names, refusing unknown keywords."""
        if len(args) > len(names):
            raise self.error(node, f"too many arguments to {self.code(node.func)}()")
        bound = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names or key in bound:
                raise self.error(node, f"unsupported keyword {key}= to {self.code(node.func)}()")
            bound[key] = value
        for name in names[:required]:
            if name not in bound:
                raise self.error(node, f"missing argument {name} to {self.code(node.func)}()")
        defaults = defaults or {}
        return [bound.get(name, defaults.get(name)) for name in names]

    def call_function(self, name: str, args: list[object], kwargs: dict[str, object], node: cst.Call) -> object:
        module, _, function = name.rpartition(".")
        if name == "lzma.decompress":
            data, fmt, _memlimit, filters = self.expect(node, args, kwargs, ("data", "format", "memlimit", "filters"), 1,
                                                        {"format": lzma.FORMAT_AUTO})
            return self.lzma_decode(self.data_arg(data, node, "lzma.decompress"), fmt, filters, node, whole=True)
        if name == "lzma.LZMADecompressor":
            fmt, _memlimit, filters = self.expect(node, args, kwargs, ("format", "memlimit", "filters"), 0,
                                                  {"format": lzma.FORMAT_AUTO})
            return _DecompressorObject("lzma", {"format": fmt, "filters": filters})
        if name == "zlib.decompress":
            data, wbits, _bufsize = self.expect(node, args, kwargs, ("data", "wbits", "bufsize"), 1, {"wbits": zlib.MAX_WBITS})
            return self.zlib_decode(self.data_arg(data, node, "zlib.decompress"), wbits, node, whole=True)
        if name == "zlib.decompressobj":
            wbits, = self.expect(node, args, kwargs, ("wbits",), 0, {"wbits": zlib.MAX_WBITS})
            return _DecompressorObject("zlib", {"wbits": wbits})
        if name == "gzip.decompress":
            data, = self.expect(node, args, kwargs, ("data",), 1)
            return self.gzip_decode(self.data_arg(data, node, "gzip.decompress"), node)
        if name == "bz2.decompress":
            data, = self.expect(node, args, kwargs, ("data",), 1)
            return self.bz2_decode(self.data_arg(data, node, "bz2.decompress"), node, whole=True)
        if name == "bz2.BZ2Decompressor":
            self.expect(node, args, kwargs, (), 0)
            return _DecompressorObject("bz2", {})
        if name == "brotli.decompress":
            data, = self.expect(node, args, kwargs, ("string",), 1)
            return self.brotli_decode(self.data_arg(data, node, "brotli.decompress"), node)
        if module == "base64" and function in _BASE64_CODECS:
            return self.base64_decode(function, args, kwargs, node)
        if name in ("binascii.a2b_base64", "binascii.a2b_hex", "binascii.unhexlify", "bytes.fromhex"):
            data, = self.expect(node, args, kwargs, ("data",), 1)
            tag = "base64" if function == "a2b_base64" else "hex"
            if name == "bytes.fromhex" and not isinstance(data, str):
                raise self.error(node, "bytes.fromhex() needs a str")
            decoder = {"a2b_base64": binascii.a2b_base64, "a2b_hex": binascii.a2b_hex,
                       "unhexlify": binascii.unhexlify, "fromhex": bytes.fromhex}[function]
            return self.pure_decode(decoder, data, tag, node)
        if name == "codecs.decode":
            data, encoding, errors = self.expect(node, args, kwargs, ("obj", "encoding", "errors"), 1,
                                                 {"encoding": "utf-8", "errors": "strict"})
            return self.codecs_decode(data, encoding, errors, node)
        if name == "codecs.encode":
            data, encoding, errors = self.expect(node, args, kwargs, ("obj", "encoding", "errors"), 1,
                                                 {"encoding": "utf-8", "errors": "strict"})
            if isinstance(data, str) and isinstance(encoding, str) and encoding.lower().replace("-", "_") in ("rot13", "rot_13"):
                return self.rot13(data)
            if isinstance(data, str):
                return self.text_encode(data, encoding, errors, node)
            raise self.unsupported(node)
        if name == "builtins.compile":
            source, _filename, mode = self.expect(node, args, kwargs, ("source", "filename", "mode", "flags", "dont_inherit", "optimize"), 3)[:3]
            if mode != "exec":
                raise self.error(node, f"compile() in {mode!r} mode is not a wrapper layer")
            if not isinstance(source, (str, bytes, bytearray)):
                raise self.error(node, f"compile() of {_type_name(source)}")
            return _CodeObject(bytes(source) if isinstance(source, bytearray) else source)
        if name in ("builtins.globals", "builtins.locals", "builtins.vars", "builtins.dict"):
            if args or (kwargs and name != "builtins.dict"):
                raise self.unsupported(node)
            return kwargs if name == "builtins.dict" else _Namespace()
        if name in ("builtins.bytes", "builtins.bytearray"):
            if len(args) == 1 and not kwargs and isinstance(args[0], (bytes, bytearray)):
                return bytes(args[0])
            if 2 <= len(args) <= 3 and isinstance(args[0], str):
                source, encoding, errors = (args + ["utf-8", "strict"][len(args) - 1:])[:3]
                return self.text_encode(source, encoding, errors, node)  # type: ignore[arg-type]
            raise self.unsupported(node)
        if name == "builtins.str":
            if len(args) == 1 and not kwargs and isinstance(args[0], (str, PurePosixPath)):
                return str(args[0])
            data, encoding, errors = self.expect(node, args, kwargs, ("object", "encoding", "errors"), 2, {"errors": "strict"})
            if isinstance(data, (bytes, bytearray)):
                return self.text_decode(bytes(data), encoding, errors, node)
            raise self.unsupported(node)
        if name in ("builtins.__import__", "importlib.import_module"):
            if not args or not isinstance(args[0], str):
                raise self.error(node, f"{function}() needs a literal module name")
            target = args[0] if name == "importlib.import_module" else args[0].split(".")[0]
            if target not in _MODELLED_MODULES:
                raise self.error(node, f"{function}({args[0]!r}) imports a module a wrapper may not use")
            self.check_not_shadowed(target, node)
            return _ModuleRef(target)
        if name in ("builtins.open", "io.open"):
            file, mode = self.expect(node, args, kwargs, ("file", "mode", "buffering", "encoding", "errors", "newline"), 1,
                                     {"mode": "r"})[:2]
            return self.open_file(file, mode, node)
        if module == "os.path" or name in ("os.fspath", "os.getcwd"):
            return self.os_path(function, args, kwargs, node)
        if module == "pathlib":
            if kwargs or not all(isinstance(a, (str, PurePosixPath)) for a in args):
                raise self.unsupported(node)
            return PurePosixPath(*[str(a) for a in args]) if args else PurePosixPath(FOLDER_ROOT)
        if name in _EXEC_FUNCTIONS:
            raise self.error(node, f"{function}() inside an exec argument is not supported")
        raise self.unsupported(node)

    def call_method(self, method: _BoundMethod, args: list[object], kwargs: dict[str, object], node: cst.Call) -> object:
        owner, name = method.owner, method.name
        if isinstance(owner, str):
            if name == "encode":
                encoding, errors = self.expect(node, args, kwargs, ("encoding", "errors"), 0, {"encoding": "utf-8", "errors": "strict"})
                return self.text_encode(owner, encoding, errors, node)
            return self.string_method(owner, name, args, kwargs, node)
        if isinstance(owner, bytes):
            if name == "decode":
                encoding, errors = self.expect(node, args, kwargs, ("encoding", "errors"), 0, {"encoding": "utf-8", "errors": "strict"})
                return self.text_decode(owner, encoding, errors, node)
            return self.string_method(owner, name, args, kwargs, node)
        if isinstance(owner, _OpenFile):
            size, = self.expect(node, args, kwargs, ("size",), 0, {"size": -1})
            if size not in (-1, None):
                raise self.error(node, "read(size) of part of a file is not supported")
            return self.read_file(owner.path, owner.binary, node)
        if isinstance(owner, PurePosixPath):
            return self.path_method(owner, name, args, kwargs, node)
        if isinstance(owner, _DecompressorObject):
            data, max_length = self.expect(node, args, kwargs, ("data", "max_length"), 1, {"max_length": -1})
            if max_length != -1:
                raise self.error(node, "decompress(max_length) is not supported")
            data = self.data_arg(data, node, f"{owner.codec} decompressor")
            if owner.codec == "lzma":
                return self.lzma_decode(data, owner.options["format"], owner.options["filters"], node, whole=False)
            if owner.codec == "zlib":
                return self.zlib_decode(data, owner.options["wbits"], node, whole=False)
            return self.bz2_decode(data, node, whole=False)
        raise self.unsupported(node)

    def string_method(self, owner: str | bytes, name: str, args: list[object], kwargs: dict[str, object], node: cst.Call) -> object:
        if kwargs:
            raise self.unsupported(node)
        kind = type(owner)
        if name == "replace" and len(args) in (2, 3) and all(isinstance(a, kind) for a in args[:2]) \
                and (len(args) == 2 or isinstance(args[2], int)):
            result = owner.replace(*args)  # type: ignore[arg-type]
            if len(result) > self.limits.max_literal_bytes:
                raise self.error(node, "replace() result larger than the literal limit")
            return result
        if name in ("strip", "lstrip", "rstrip") and (not args or (len(args) == 1 and isinstance(args[0], (kind, type(None))))):
            return getattr(owner, name)(*args)
        if name == "join" and len(args) == 1 and isinstance(args[0], (list, tuple)) and all(isinstance(a, kind) for a in args[0]):
            result = owner.join(args[0])  # type: ignore[arg-type]
            if len(result) > self.limits.max_literal_bytes:
                raise self.error(node, "join() result larger than the literal limit")
            return result
        raise self.unsupported(node)

    # -- paths and files -----------------------------------------------------------------

    def os_path(self, function: str, args: list[object], kwargs: dict[str, object], node: cst.Call) -> object:
        if kwargs or not all(isinstance(a, (str, PurePosixPath)) for a in args):
            raise self.unsupported(node)
        parts = [str(a) for a in args]
        if function == "getcwd" and not parts:
            return FOLDER_ROOT
        if function == "join" and parts:
            return posixpath.join(*parts)
        if len(parts) != 1:
            raise self.unsupported(node)
        path = parts[0]
        if function == "fspath":
            return path
        if function == "dirname":
            return posixpath.dirname(path)
        if function == "basename":
            return posixpath.basename(path)
        if function in ("abspath", "realpath"):
            return modelled_abspath(path)
        if function == "normpath":
            return posixpath.normpath(path)
        raise self.unsupported(node)

    def path_method(self, path: PurePosixPath, name: str, args: list[object], kwargs: dict[str, object], node: cst.Call) -> object:
        if name in ("resolve", "absolute") and not args and not kwargs:
            return PurePosixPath(modelled_abspath(str(path)))
        if name in ("with_name", "with_suffix") and len(args) == 1 and not kwargs and isinstance(args[0], str):
            try:
                return getattr(path, name)(args[0])
            except ValueError as exc:
                raise self.error(node, f"{name}(): {exc}") from None
        if name == "joinpath" and not kwargs and all(isinstance(a, (str, PurePosixPath)) for a in args):
            return path.joinpath(*[str(a) for a in args])
        if name == "read_text":
            encoding, errors = self.expect(node, args, kwargs, ("encoding", "errors"), 0, {"encoding": "utf-8", "errors": "strict"})
            if _TEXT_ENCODINGS.get(str(encoding).lower()) != "utf-8":
                raise self.error(node, f"read_text(encoding={encoding!r}) is not supported")
            return self.read_file(self.path_of(path, node), binary=False, node=node)
        if name == "read_bytes" and not args and not kwargs:
            return self.read_file(self.path_of(path, node), binary=True, node=node)
        if name == "open":
            mode, = self.expect(node, args, kwargs, ("mode", "buffering", "encoding", "errors", "newline"), 0, {"mode": "r"})[:1]
            return self.open_file(path, mode, node)
        raise self.unsupported(node)

    def path_of(self, value: object, node: cst.CSTNode) -> str:
        if not isinstance(value, (str, PurePosixPath)):
            raise self.error(node, f"file path evaluates to {_type_name(value)}")
        try:
            return folder_relative(value)
        except ValueError as exc:
            raise self.error(node, str(exc)) from None

    def open_file(self, file: object, mode: object, node: cst.Call) -> _OpenFile:
        if mode not in ("r", "rt", "tr", "rb", "br"):
            raise self.error(node, f"open() in mode {mode!r} is not supported in a wrapper")
        return _OpenFile(self.path_of(file, node), binary="b" in str(mode))

    def read_file(self, relative: str, binary: bool, node: cst.CSTNode) -> str | bytes:
        try:
            content = self.limits.read_sibling(relative)
        except (OSError, ValueError) as exc:
            raise self.error(node, f"cannot read {relative}: {exc}") from None
        if content is None:
            raise self.error(node, f"{relative} is not a file of the record folder")
        self.reads.append(relative)
        size = len(content) if isinstance(content, bytes) else len(content.encode("utf-8", "surrogateescape"))
        self.spend(size, node, f"reading {relative}")
        if binary:
            return content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(node, f"{relative} is not UTF-8 text") from None
        else:
            try:
                content.encode("utf-8")
            except UnicodeEncodeError:  # surrogate escapes stand for bytes that are not UTF-8
                raise self.error(node, f"{relative} is not UTF-8 text") from None
        # open() in text mode translates newlines
        return content.replace("\r\n", "\n").replace("\r", "\n") if "\r" in content else content

    # -- codecs --------------------------------------------------------------------------

    def spend(self, nbytes: int, node: cst.CSTNode, what: str = "") -> None:
        if nbytes > self.limits.remaining:
            raise self.budget_error(node)
        self.limits.remaining -= nbytes

    def budget_error(self, node: cst.CSTNode) -> UnwrapError:
        return self.error(node, f"decoded output exceeds {_human_size(self.limits.max_output_bytes)}")

    def data_arg(self, value: object, node: cst.Call, what: str) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        raise self.error(node, f"{what}() needs bytes, got {_type_name(value)}")

    def pure_decode(self, decoder: Callable, data: object, tag: str, node: cst.Call, **options: object) -> bytes:
        if not isinstance(data, (str, bytes, bytearray)):
            raise self.error(node, f"{tag} decoder needs str or bytes, got {_type_name(data)}")
        if isinstance(data, str) and not data.isascii():
            raise self.error(node, f"{tag} data contains non-ASCII characters")
        try:
            out = decoder(data, **options)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise self.error(node, f"{tag} data is invalid ({exc})") from None
        self.spend(len(out), node)
        self.codecs.append(tag)
        return out

    def base64_decode(self, function: str, args: list[object], kwargs: dict[str, object], node: cst.Call) -> bytes:
        if len(args) != 1:
            raise self.error(node, f"base64.{function}() takes one positional argument here")
        allowed = _BASE64_KEYWORDS.get(function, set())
        for key, value in kwargs.items():
            if key not in allowed or not isinstance(value, (str, bytes, bool, type(None))):
                raise self.error(node, f"unsupported keyword {key}= to base64.{function}()")
        if function == "decodebytes" and not isinstance(args[0], (bytes, bytearray)):
            raise self.error(node, "base64.decodebytes() needs bytes")
        return self.pure_decode(getattr(base64, function), args[0], _BASE64_CODECS[function], node, **kwargs)

    def codecs_decode(self, data: object, encoding: object, errors: object, node: cst.Call) -> object:
        if not isinstance(encoding, str):
            raise self.error(node, "codecs.decode() needs a literal encoding")
        name = encoding.lower().replace("-", "_")
        if name in ("rot13", "rot_13"):
            if not isinstance(data, str):
                raise self.error(node, "rot13 needs str")
            return self.rot13(data)
        bytes_codecs = {"base64": ("base64_codec", "base64", "base_64"), "hex": ("hex", "hex_codec"),
                        "zlib": ("zlib", "zlib_codec", "zip"), "bz2": ("bz2", "bz2_codec")}
        for codec, names in bytes_codecs.items():
            if name in names:
                if not isinstance(data, (bytes, bytearray)):
                    raise self.error(node, f"codecs.decode(..., {encoding!r}) needs bytes")
                if codec == "base64":
                    return self.pure_decode(binascii.a2b_base64, bytes(data), "base64", node)
                if codec == "hex":
                    return self.pure_decode(binascii.a2b_hex, bytes(data), "hex", node)
                if codec == "zlib":
                    return self.zlib_decode(bytes(data), zlib.MAX_WBITS, node, whole=True)
                return self.bz2_decode(bytes(data), node, whole=True)
        if isinstance(data, (bytes, bytearray)):
            return self.text_decode(bytes(data), encoding, errors, node)
        raise self.error(node, f"unsupported codec {encoding!r} in codecs.decode()")

    def rot13(self, data: str) -> str:
        self.codecs.append("rot13")
        table = str.maketrans("ABCDEFGHIJKLMabcdefghijklmNOPQRSTUVWXYZnopqrstuvwxyz",
                              "NOPQRSTUVWXYZnopqrstuvwxyzABCDEFGHIJKLMabcdefghijklm")
        return data.translate(table)

    def text_codec(self, encoding: object, errors: object, node: cst.Call) -> tuple[str, str]:
        if not isinstance(encoding, str) or encoding.lower() not in _TEXT_ENCODINGS:
            raise self.error(node, f"unsupported text encoding {encoding!r}")
        if errors not in _ERROR_HANDLERS:
            raise self.error(node, f"unsupported error handler {errors!r}")
        return _TEXT_ENCODINGS[encoding.lower()], errors  # type: ignore[return-value]

    def text_decode(self, data: bytes, encoding: object, errors: object, node: cst.Call) -> str:
        codec, handler = self.text_codec(encoding, errors, node)
        try:
            return data.decode(codec, handler)
        except UnicodeDecodeError as exc:
            raise self.error(node, f"decoded data is not {codec} text ({exc.reason} at byte {exc.start})") from None

    def text_encode(self, data: str, encoding: object, errors: object, node: cst.Call) -> bytes:
        codec, handler = self.text_codec(encoding, errors, node)
        try:
            return data.encode(codec, handler)
        except UnicodeEncodeError as exc:
            raise self.error(node, f"cannot encode text as {codec} ({exc.reason})") from None

    def lzma_decode(self, data: bytes, fmt: object, filters: object, node: cst.Call, *, whole: bool) -> bytes:
        """lzma.decompress (whole=True: all concatenated streams, end marker required) or
        LZMADecompressor().decompress (whole=False: one stream, partial output allowed)."""
        if fmt not in (lzma.FORMAT_AUTO, lzma.FORMAT_XZ, lzma.FORMAT_ALONE, lzma.FORMAT_RAW):
            raise self.error(node, f"unknown lzma format {fmt!r}")
        filter_chain = self.lzma_filters(filters, node) if filters is not None else None
        if fmt == lzma.FORMAT_RAW:
            if filter_chain is None:
                raise self.error(node, "lzma FORMAT_RAW needs filters")
            tag = "lzma-raw-" + "+".join(_LZMA_FILTER_NAMES.get(f["id"], str(f["id"])).lower() for f in filter_chain)
        else:
            if filter_chain is not None:
                raise self.error(node, "lzma filters are only valid with FORMAT_RAW")
            detected = fmt
            if fmt == lzma.FORMAT_AUTO:
                detected = lzma.FORMAT_XZ if data.startswith(_XZ_MAGIC) else lzma.FORMAT_ALONE
            tag = "lzma-xz" if detected == lzma.FORMAT_XZ else "lzma-alone"

        def make() -> lzma.LZMADecompressor:
            if fmt == lzma.FORMAT_RAW:
                return lzma.LZMADecompressor(format=fmt, filters=filter_chain)
            return lzma.LZMADecompressor(format=fmt, memlimit=LZMA_MEMORY_LIMIT)

        chunks: list[bytes] = []
        total = 0
        remaining_input = data
        while True:
            try:
                decompressor = make()
            except (lzma.LZMAError, ValueError, TypeError) as exc:
                raise self.error(node, f"bad lzma filter settings ({exc})") from None
            try:
                total = self.drain_stream(decompressor, remaining_input, chunks, total, node)
            except lzma.LZMAError as exc:
                if chunks and whole and remaining_input is not data:
                    break  # like lzma.decompress: trailing data that is not a stream is ignored
                message = str(exc)
                if "memory" in message.lower():
                    raise self.error(node, f"lzma stream needs more than {_human_size(LZMA_MEMORY_LIMIT)} of memory") from None
                raise self.error(node, f"lzma data is corrupt ({message})") from None
            if not whole:
                break
            if not decompressor.eof:
                raise self.error(node, "lzma data is truncated (no end-of-stream marker)")
            remaining_input = decompressor.unused_data
            if not remaining_input or fmt == lzma.FORMAT_RAW:
                break
        self.limits.remaining -= total
        self.codecs.append(tag)
        return b"".join(chunks)

    def drain_stream(self, decompressor, data: bytes, chunks: list[bytes], total: int, node: cst.Call) -> int:
        """Feed one stream to an lzma- or bz2-style decompressor, appending its output to
        ``chunks`` without ever asking for more than the remaining output budget allows;
        returns the new running total. Codec errors propagate to the caller."""
        limit = self.limits.remaining
        chunk = decompressor.decompress(data, max_length=limit - total + 1)
        while True:
            total += len(chunk)
            chunks.append(chunk)
            if total > limit:
                raise self.budget_error(node)
            if decompressor.eof or decompressor.needs_input:
                return total
            chunk = decompressor.decompress(b"", max_length=limit - total + 1)

    def lzma_filters(self, filters: object, node: cst.Call) -> list[dict[str, int]]:
        if not isinstance(filters, (list, tuple)) or not filters:
            raise self.error(node, "lzma filters must be a non-empty list of dicts")
        chain: list[dict[str, int]] = []
        for spec in filters:
            if not isinstance(spec, dict) or "id" not in spec:
                raise self.error(node, "each lzma filter must be a dict with an 'id'")
            for key, value in spec.items():
                if key not in _LZMA_FILTER_KEYS or not isinstance(value, int) or isinstance(value, bool):
                    raise self.error(node, f"unsupported lzma filter option {key!r}")
            if spec["id"] not in _LZMA_FILTER_NAMES:
                raise self.error(node, f"unknown lzma filter id {spec['id']!r}")
            dict_size = spec.get("dict_size")
            if dict_size is None and "preset" in spec:
                dict_size = _LZMA_PRESET_DICT[min(spec["preset"] & 0x1F, 9)]
            if dict_size is not None and dict_size > LZMA_MEMORY_LIMIT:
                raise self.error(node, f"lzma dictionary of {dict_size} bytes exceeds the {_human_size(LZMA_MEMORY_LIMIT)} limit")
            chain.append(dict(spec))  # type: ignore[arg-type]
        return chain

    def zlib_decode(self, data: bytes, wbits: object, node: cst.Call, *, whole: bool) -> bytes:
        if not isinstance(wbits, int) or isinstance(wbits, bool):
            raise self.error(node, "zlib wbits must be an integer")
        if -15 <= wbits <= -9:
            tag = "zlib-raw"
        elif 25 <= wbits <= 31:
            tag = "zlib-gzip"
        elif 41 <= wbits <= 47:
            tag = "zlib-auto"
        else:
            tag = "zlib"
        try:
            decompressor = zlib.decompressobj(wbits)
        except ValueError as exc:
            raise self.error(node, f"bad zlib wbits {wbits} ({exc})") from None
        out = self.drain_zlib(decompressor, data, node, "zlib", require_end=whole)
        self.codecs.append(tag)
        return out

    def drain_zlib(self, decompressor, data: bytes, node: cst.Call, name: str, *, require_end: bool) -> bytes:
        chunks: list[bytes] = []
        total = 0
        limit = self.limits.remaining
        pending = data
        try:
            while True:
                chunk = decompressor.decompress(pending, limit - total + 1)
                total += len(chunk)
                chunks.append(chunk)
                if total > limit:
                    raise self.budget_error(node)
                if decompressor.eof:
                    break
                pending = decompressor.unconsumed_tail
                if not pending and not chunk:
                    break
        except zlib.error as exc:
            raise self.error(node, f"{name} data is corrupt ({exc})") from None
        if require_end and not decompressor.eof:
            raise self.error(node, f"{name} data is truncated (incomplete stream)")
        self.limits.remaining -= total
        self.last_unused = decompressor.unused_data
        return b"".join(chunks)

    def gzip_decode(self, data: bytes, node: cst.Call) -> bytes:
        members: list[bytes] = []
        pending = data
        while True:
            if not pending.startswith(b"\x1f\x8b"):
                raise self.error(node, "gzip data is corrupt (not a gzip member)")
            members.append(self.drain_zlib(zlib.decompressobj(16 + zlib.MAX_WBITS), pending, node, "gzip", require_end=True))
            pending = self.last_unused.lstrip(b"\x00")  # gzip.decompress tolerates zero padding
            if not pending:
                break
        self.codecs.append("gzip")
        return b"".join(members)

    def bz2_decode(self, data: bytes, node: cst.Call, *, whole: bool) -> bytes:
        chunks: list[bytes] = []
        total = 0
        pending = data
        while True:
            decompressor = bz2.BZ2Decompressor()
            try:
                total = self.drain_stream(decompressor, pending, chunks, total, node)
            except (OSError, ValueError) as exc:
                if chunks and whole and pending is not data:
                    break  # bz2.decompress ignores trailing data that is not a stream
                raise self.error(node, f"bz2 data is corrupt ({exc})") from None
            if not whole:
                break
            if not decompressor.eof:
                raise self.error(node, "bz2 data is truncated (no end-of-stream marker)")
            pending = decompressor.unused_data
            if not pending:
                break
        self.limits.remaining -= total
        self.codecs.append("bz2")
        return b"".join(chunks)

    def brotli_decode(self, data: bytes, node: cst.Call) -> bytes:
        brotli = _load_brotli()
        if brotli is None:
            raise self.error(node, "unsupported codec brotli (the brotli module is not installed)")
        decompressor = brotli.Decompressor()
        limit = self.limits.remaining
        chunks: list[bytes] = []
        total = 0

        def take(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)
            chunks.append(chunk)
            if total > limit:
                raise self.budget_error(node)

        try:
            try:
                first = decompressor.process(data, max_output_length=limit - total + 1)
                bounded = True
            except TypeError:  # brotli before 1.2 has no output limit
                bounded = False
            if bounded:
                take(first)
                while not decompressor.is_finished():
                    chunk = decompressor.process(b"", max_output_length=limit - total + 1)
                    if not chunk:
                        break
                    take(chunk)
            else:
                # without an output limit, feed one byte at a time so that no single call
                # can expand far beyond the budget
                for offset in range(len(data)):
                    take(decompressor.process(data[offset:offset + 1]))
        except UnwrapError:
            raise
        except Exception as exc:  # brotli.error has no stable import path across versions
            raise self.error(node, f"brotli data is corrupt ({exc})") from None
        if not decompressor.is_finished():
            raise self.error(node, "brotli data is truncated")
        self.limits.remaining -= total
        self.codecs.append("brotli")
        return b"".join(chunks)


def _type_name(value: object) -> str:
    if isinstance(value, _ModuleRef):
        return f"module {value.name}"
    if isinstance(value, _FunctionRef):
        return f"function {value.name}"
    if isinstance(value, PurePosixPath):
        return "Path"
    return type(value).__name__.lstrip("_")


# ---------------------------------------------------------------------------------------
# Entry points


def _normalize_name(name: str) -> str:
    return posixpath.normpath(name.replace(os.sep, "/")) if name else name


def unwrap(
    entry: str,
    text: str,
    read_sibling: Callable[[str], str | bytes | None],
    *,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_literal_bytes: int | None = None,
    entry_bytes: int | None = None,
    from_file: bool = True,
) -> UnwrappedCode:
    """Peel self-extracting layers off ``text`` (the contents of ``entry``) without running it.

    ``read_sibling`` gets folder-relative POSIX paths and returns the file's text (binary
    files decoded with ``surrogateescape``, or as bytes), or None when there is no such file.
    ``entry_bytes`` is the entry's size on disk when the caller knows it (default: the UTF-8
    size of ``text``). Raises UnwrapError when a file shaped like a wrapper cannot be
    interpreted, or when a limit is hit.
    """
    entry = _normalize_name(entry)
    size = entry_bytes if entry_bytes is not None else len(text.encode("utf-8", "surrogateescape"))
    check_source_shape(text, entry, from_file=from_file)
    layers: list[WrapperLayer] = []
    file, runtime_file, current = entry, entry, text
    module: cst.Module | None = None
    if not looks_like_wrapper(text):
        return _with_embedded_payloads(UnwrappedCode(entry, size, entry, text, [], None, entry), read_sibling,
                                       max_output_bytes, max_depth)
    limits = _Limits(read_sibling, max_output_bytes,
                     max_literal_bytes if max_literal_bytes is not None else max_output_bytes, max_output_bytes)
    try:
        while True:
            if layers:
                check_source_shape(current, file, len(layers), from_file=False)
            try:
                module = parse_module(current)
            except SourceParseError as exc:
                if layers:
                    last = layers[-1]
                    detail = f"{exc} (line {exc.line} of the decoded text)" if exc.line and "line" not in str(exc) else str(exc)
                    raise UnwrapError(f"text decoded by this layer is {detail}", last.file, last.line, len(layers) - 1) from None
                raise UnwrapError(f"looks like a self-extracting wrapper but is {exc}", file, exc.line) from None
            statements = _classify_module(module)
            execs = [s for s in statements if s.kind in ("exec", "with-exec")]
            if not execs:
                break
            others = [s for s in statements if s.kind == "other"]
            positions = LineTable(module)
            if others:
                # a script with code besides its exec: not a wrapper layer; an exec of encoded data
                # in it is an embedded payload, read in place by _with_embedded_payloads
                break
            if len(execs) > 1:
                lines = ", ".join(str(positions.span(s.call, s.top).start_line) for s in execs)  # type: ignore[arg-type]
                raise UnwrapError(f"wrapper has {len(execs)} exec calls (lines {lines}); "
                                  "only one exec per layer is supported", file, None, len(layers))
            if len(layers) >= max_depth:
                raise UnwrapError(f"wrapper nesting exceeds {max_depth} layers", file,
                                  positions.span(execs[0].call, execs[0].top).start_line, len(layers))  # type: ignore[arg-type]
            result = _LayerInterpreter(limits, file, runtime_file, module, len(layers)).run(statements)
            layers.append(result.layer)
            file, runtime_file, current = result.next_file, result.next_runtime_file, result.text
    except RecursionError:
        raise UnwrapError("expression nesting too deep to interpret", file, None, len(layers)) from None
    return _with_embedded_payloads(UnwrappedCode(entry, size, file, current, layers, module, runtime_file),
                                   read_sibling, max_output_bytes, max_depth)


def _with_embedded_payloads(code: UnwrappedCode, read_sibling: Callable[[str], str | bytes | None],
                            max_output_bytes: int, max_depth: int) -> UnwrappedCode:
    """``code`` with every top-level ``exec(<decodable payload>)`` statement replaced by the
    source it runs (a readable script may carry one hidden line), so that the rules read the
    code that really runs. Any other place where the code runs data that is not a literal
    (exec of a variable, eval of input, exec spelled through getattr or ``__builtins__``) is an
    UnwrapError: that code cannot be read without running it, so the audit cannot pass."""
    while _RUNS_DATA_HINT_RE.search(code.source):
        module = code.module
        if module is None:
            try:
                module = parse_module(code.source)
            except SourceParseError:
                return code  # reported as unparseable by whoever parses it next
            code.module = module
        found = calls_running_data(module)
        if not found:
            return code
        first = found[0]
        depth = len(code.layers)
        inner = _embedded_payload(module, first, code.origin, read_sibling, max_output_bytes, max_depth - depth - 1)
        if inner is None:
            raise UnwrapError(
                f"runs code that is not a literal ({first.code}); what it runs cannot be read without running it",
                code.origin, first.line, depth)
        piece = module.code_for_node(first.top)
        start = code.source.find(piece)
        if start < 0:
            raise UnwrapError("could not place the embedded payload back into the source", code.origin, first.line, depth)
        replacement = inner.source if inner.source.endswith("\n") else inner.source + "\n"
        source = code.source[:start] + replacement + code.source[start + len(piece):]
        outer = inner.layers[0]
        code.layers.append(WrapperLayer(
            file=code.origin, line=first.line or 0, codecs=outer.codecs,
            description=f"embedded payload at line {first.line}: {outer.description}",
            output_bytes=len(inner.source.encode("utf-8", "surrogatepass")), sibling=outer.sibling, imports=outer.imports,
        ))
        code.layers.extend(inner.layers[1:])
        code.source, code.module = source, None
    return code


def _embedded_payload(module: cst.Module, found: DataRunningCall, file: str,
                      read_sibling: Callable[[str], str | bytes | None], max_output_bytes: int,
                      max_depth: int) -> UnwrappedCode | None:
    """The unwrapped source that a top-level ``exec(...)`` statement of a readable script runs,
    interpreted like a wrapper made of the module's top-level imports and that one statement;
    None when the statement is not of that shape or its argument is not a decodable payload."""
    top = found.top
    if max_depth < 1 or not isinstance(top, cst.SimpleStatementLine) or len(top.body) != 1:
        return None
    statement = top.body[0]
    if not (isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Call) and statement.value is found.node):
        return None
    imports = [module.code_for_node(t) for t in module.body
               if isinstance(t, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in t.body)]
    wrapper = "".join(imports) + module.code_for_node(top).lstrip()
    try:
        inner = unwrap(file, wrapper, read_sibling, max_output_bytes=max_output_bytes, max_depth=max_depth, from_file=False)
    except UnwrapError:
        return None
    return inner if inner.layers else None


class FolderReader:
    """Reads files of one record folder by relative path, never leaving the folder.

    Refuses absolute paths, ``..`` escapes, symlinks whose target lies outside the folder,
    non-regular files (FIFOs would block) and files over ``max_file_bytes``. Text is decoded
    as UTF-8 with ``surrogateescape`` so binary files survive a round trip.
    """

    def __init__(self, folder: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES):
        self.folder = Path(folder).resolve(strict=True)
        self.max_file_bytes = max_file_bytes

    def resolve(self, relative: str) -> Path | None:
        normal = folder_relative(relative.replace(os.sep, "/"))
        candidate = self.folder / normal
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not real.is_relative_to(self.folder):
            raise ValueError(f"{normal} is a link that leaves the record folder")
        return real

    def read_bytes(self, relative: str) -> bytes | None:
        real = self.resolve(relative)
        if real is None:
            return None
        info = os.stat(real)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{relative} is not a regular file")
        if info.st_size > self.max_file_bytes:
            raise ValueError(f"{relative} is larger than {_human_size(self.max_file_bytes)}")
        with open(real, "rb") as handle:
            data = handle.read(self.max_file_bytes + 1)
        if len(data) > self.max_file_bytes:
            raise ValueError(f"{relative} is larger than {_human_size(self.max_file_bytes)}")
        return data

    def read_text(self, relative: str) -> str | None:
        data = self.read_bytes(relative)
        return None if data is None else data.decode("utf-8", "surrogateescape")

    def list_files(self) -> dict[str, int]:
        """Relative POSIX path -> size of every regular file in the folder (links that stay
        inside are listed under their own name; ``.git`` and ``__pycache__`` are skipped)."""
        files: dict[str, int] = {}
        for directory, subdirs, names in os.walk(self.folder):
            subdirs[:] = sorted(d for d in subdirs if d not in (".git", "__pycache__"))
            for name in sorted(names):
                path = Path(directory) / name
                relative = path.relative_to(self.folder).as_posix()
                try:
                    real = self.resolve(relative)
                except ValueError:
                    continue
                if real is not None and real.is_file():
                    files[relative] = real.stat().st_size
        return files


def unwrap_file(path: Path, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, max_depth: int = DEFAULT_MAX_DEPTH,
                max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> UnwrappedCode:
    """Unwrap a file on disk, reading siblings from its own folder only."""
    path = Path(path)
    reader = FolderReader(path.parent, max_file_bytes=max_file_bytes)
    entry = path.name
    try:
        data = reader.read_bytes(entry)
    except ValueError as exc:
        raise UnwrapError(str(exc), entry) from None
    if data is None:
        raise UnwrapError("file not found", entry)
    text = data.decode("utf-8", "surrogateescape")
    return unwrap(entry, text, reader.read_text, max_output_bytes=max_output_bytes, max_depth=max_depth,
                  entry_bytes=len(data))


# ---------------------------------------------------------------------------------------
# Building wrappers (tests, fixtures and docs)

_WRAPPER_COMPRESSORS: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    # name: (import line, compress, decode expression around {x})
    "lzma-raw": ("lzma as L", lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]),
                 'L.decompress({x},format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2,"preset":9|L.PRESET_EXTREME}}])'),
    "lzma": ("lzma as L", lambda b: lzma.compress(b, preset=9), "L.decompress({x})"),
    "lzma-alone": ("lzma as L", lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE), "L.decompress({x},format=L.FORMAT_ALONE)"),
    "zlib": ("zlib as Z", lambda b: zlib.compress(b, 9), "Z.decompress({x})"),
    "zlib-raw": ("zlib as Z", lambda b: _deflate_raw(b), "Z.decompress({x},-15)"),
    "gzip": ("gzip as G", lambda b: _gzip_compress(b), "G.decompress({x})"),
    "bz2": ("bz2 as Z", lambda b: bz2.compress(b, 9), "Z.decompress({x})"),
    "brotli": ("brotli as R", lambda b: _brotli_compress(b), "R.decompress({x})"),
    "none": ("", lambda b: b, "{x}"),
}
_WRAPPER_ENCODERS: dict[str, tuple[str, Callable[[bytes], str], str]] = {
    "b85": ("base64 as B", lambda b: base64.b85encode(b).decode("ascii"), "B.b85decode({s})"),
    "b64": ("base64 as B", lambda b: base64.b64encode(b).decode("ascii"), "B.b64decode({s})"),
    "urlsafe-b64": ("base64 as B", lambda b: base64.urlsafe_b64encode(b).decode("ascii"), "B.urlsafe_b64decode({s})"),
    "a85": ("base64 as B", lambda b: base64.a85encode(b).decode("ascii"), "B.a85decode({s})"),
    "b32": ("base64 as B", lambda b: base64.b32encode(b).decode("ascii"), "B.b32decode({s})"),
    "hex": ("", lambda b: b.hex(), "bytes.fromhex({s})"),
}


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _gzip_compress(data: bytes) -> bytes:
    import gzip  # only for building wrappers; decoding uses zlib directly
    return gzip.compress(data, mtime=0)


def _brotli_compress(data: bytes) -> bytes:
    brotli = _load_brotli()
    if brotli is None:
        raise ValueError("unsupported codec brotli (the brotli module is not installed)")
    return brotli.compress(data)


def _python_literal(text: str) -> str:
    """A double-quoted literal for ``text`` (escapes only what needs escaping)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_wrapper(source: str, *, codec: str = "lzma-raw+b85", line_width: int | None = None, decode_text: bool = False) -> str:
    """A self-extracting wrapper for ``source`` in the style submissions use.

    ``codec`` is "<compressor>+<encoder>" with compressor in lzma-raw, lzma, lzma-alone, zlib,
    zlib-raw, gzip, bz2, brotli, none and encoder in b85, b64, urlsafe-b64, a85, b32, hex;
    a lone encoder ("b64") means no compression. ``line_width`` splits the literal into
    implicitly concatenated lines; ``decode_text`` adds ``.decode()`` before exec.
    """
    compressor_name, _, encoder_name = codec.rpartition("+")
    compressor_name = compressor_name or "none"
    if compressor_name not in _WRAPPER_COMPRESSORS or encoder_name not in _WRAPPER_ENCODERS:
        raise ValueError(f"unknown wrapper codec {codec!r}")
    compress_import, compress, compress_expr = _WRAPPER_COMPRESSORS[compressor_name]
    encode_import, encode, encode_expr = _WRAPPER_ENCODERS[encoder_name]
    encoded = encode(compress(source.encode("utf-8")))
    if line_width:
        chunks = [encoded[i:i + line_width] for i in range(0, len(encoded), line_width)] or [""]
        literal = "(\n" + "\n".join("    " + _python_literal(chunk) for chunk in chunks) + "\n)"
    else:
        literal = _python_literal(encoded)
    expression = compress_expr.format(x=encode_expr.format(s=literal))
    if decode_text:
        expression += ".decode()"
    imports = ",".join(i for i in (compress_import, encode_import) if i)
    header = f"import {imports}\n" if imports else ""
    return f"{header}exec({expression})\n"

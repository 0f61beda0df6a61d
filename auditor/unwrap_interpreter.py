"""The interpreter of one wrapper layer: a small whitelisted expression grammar over the
libcst tree (string and bytes literals, import aliases, module constants, known decoders and
file readers confined to the record folder). Nothing is executed, imported or evaluated.

Over 700 lines for a reason: ``_LayerInterpreter`` is one evaluator (about 940 lines) whose
dispatch over the grammar's calls, attributes and statements shares the layer's state; the
values, decoders and statement classifier it reads are kept beside it, so the grammar can be
read, and audited for safety, in one place."""

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
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import libcst as cst

from pgolf_audit.cstutil import dotted_name
from pgolf_audit.lines import LineTable
from .unwrap_types import LZMA_MEMORY_LIMIT, LayerImport, UnwrapError, WrapperLayer
from .unwrap_literals import FOLDER_ROOT, LiteralError, _human_size, folder_path, folder_relative, modelled_abspath, simple_string_value, string_value

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

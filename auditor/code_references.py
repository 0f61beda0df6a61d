"""The references one Python module makes to other code of the folder: imports, and files it
reads, executes, compiles or loads (``importlib``, ``runpy``, ``exec(open(...).read())``,
``torch.utils.cpp_extension.load``), found statically in its libcst tree. The code accounting
(``codebytes``) follows them from the entry script; nothing is imported or run.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping

import libcst as cst

from pgolf_audit.cstutil import dotted_name, visit_readonly
from pgolf_audit.lines import LineTable
from pgolf_audit.unwrap import LiteralError, folder_path, folder_relative, modelled_abspath, string_value

PYTHON_EXTENSIONS = (".py", ".pyx", ".pxd", ".triton")
NATIVE_EXTENSIONS = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".cu", ".cuh", ".ptx")
SOURCE_EXTENSIONS = PYTHON_EXTENSIONS + NATIVE_EXTENSIONS

# Libraries a submission commonly imports; a same-named local file shadows them.
KNOWN_LIBRARIES = frozenset({
    "torch", "numpy", "triton", "sentencepiece", "brotli", "zstandard", "zstd", "flash_attn",
    "flash_attn_interface", "einops", "tiktoken", "datasets", "huggingface_hub", "transformers",
    "scipy", "safetensors", "tqdm", "wandb",
}) | frozenset(sys.stdlib_module_names)

_SOURCE_MENTION_RE = re.compile(r"\.(?:py|pyx|pxd|triton|c|cc|cpp|cxx|h|hh|hpp|hxx|cu|cuh|ptx)\b")
_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)
# A top-level statement whose text has none of these cannot hold a reference, so the scan
# skips it without walking its nodes (most of a training script is model and loop code).
_RELEVANT_TEXT_RE = re.compile(
    r"import|exec|compile|run_path|load|spec_from_file|SourceFileLoader|subprocess|system|popen|spawn"
    r"|sys\.path|__file__|os\.path|Path|" + _SOURCE_MENTION_RE.pattern
)
_RELEVANT_IMPORT_PREFIXES = ("torch.utils.cpp_extension", "importlib", "runpy", "subprocess", "os.path", "os.system",
                             "os.popen", "pathlib", "builtins")
_MAX_PATH_LITERAL = 4096
_MENTION_REASONS = frozenset({"named by a path expression", "named by a string literal", "named by an f-string"})
_MAX_CANDIDATES = 16
_MAX_BINDING_DEPTH = 6


def is_source_file(path: str) -> bool:
    return path.lower().endswith(SOURCE_EXTENSIONS)


# ---------------------------------------------------------------------------------------
# References found in one Python module


@dataclass(frozen=True)
class _Import:
    module: str
    names: tuple[str, ...]
    level: int
    line: int | None


@dataclass(frozen=True)
class _PathReference:
    path: str
    reason: str
    line: int | None


_PATH_FUNCTIONS = {
    "os.path.join", "os.path.dirname", "os.path.abspath", "os.path.realpath", "os.path.normpath",
    "os.path.expanduser", "os.fspath", "builtins.str", "pathlib.Path", "pathlib.PurePath",
    "pathlib.PosixPath", "pathlib.PurePosixPath",
}
_PATH_METHODS = {"with_name", "with_suffix", "joinpath", "resolve", "absolute", "replace", "expanduser"}
_IMPORT_FUNCTIONS = {"importlib.import_module", "builtins.__import__", "importlib.__import__"}
_SPEC_FUNCTIONS = {"importlib.util.spec_from_file_location": 1, "importlib.machinery.SourceFileLoader": 1}
_RUN_FILE_FUNCTIONS = {"runpy.run_path", "builtins.exec", "builtins.compile"}
_CPP_EXTENSION_LOADERS = {"torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline"}
_SUBPROCESS_PREFIXES = ("subprocess.", "os.system", "os.popen", "os.spawn", "os.exec")
_BUILTINS = {"str", "open", "exec", "compile", "__import__"}


class _ModuleScanner(cst.CSTVisitor):
    """Collects imports and file references of one module, with lines in its source."""

    def __init__(self, module: cst.Module, source: str, file: str, runtime_file: str, folder_files: Mapping[str, int]):
        super().__init__()
        self.module = module
        self.source = source
        self.file = file
        self.file_dir = posixpath.dirname(file)
        self.runtime_file = runtime_file
        self.folder_files = folder_files
        self.positions = LineTable(module, source)
        self.top: cst.CSTNode | None = None
        self.aliases: dict[str, str] = {}
        self.bindings: dict[str, list[cst.BaseExpression]] = {}
        # (name, id of the bound value): module-level bindings are seen twice, and a set keeps
        # the check constant-time (a list scan was quadratic in the bindings of one name)
        self.bound_values: set[tuple[str, int]] = set()
        self.imports: list[_Import] = []
        self.references: list[_PathReference] = []
        self.problems: list[str] = []
        self.extra_roots: list[str] = []
        self._explained: set[int] = set()  # ids of string nodes already resolved with a specific reason
        self.pending: list[tuple[cst.CSTNode | None, Callable[[cst.CSTNode], None], cst.CSTNode]] = []

    # -- driving -------------------------------------------------------------------------

    def scan(self) -> None:
        """One pass over the top-level statements whose text can hold a reference, then
        resolution of what was found (names bound later in the file resolve too)."""
        self._collect_module_bindings()
        aliased = self._relevant_aliases()
        for top, text in zip(self.module.body, _top_level_texts(self.module, self.source, self.positions)):
            if _RELEVANT_TEXT_RE.search(text) or (aliased is not None and aliased.search(text)):
                self.top = top
                visit_readonly(top, self)
        for top, handler, node in self.pending:
            self.top = top
            handler(node)
        self.pending.clear()

    def line_of(self, node: cst.CSTNode) -> int | None:
        return self.positions.line_of(node, self.top)

    def _collect_module_bindings(self) -> None:
        """``name = expr`` at module level (also under top-level if/try/with blocks); the
        statements visited later add their own, function-local ones included."""
        pending: list[cst.CSTNode] = list(self.module.body)
        while pending:
            statement = pending.pop()
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self._alias(small)
                    else:
                        self._bind(small)
                continue
            blocks: list[cst.CSTNode | None] = []
            if isinstance(statement, (cst.If, cst.With)):
                blocks = [statement.body, getattr(statement, "orelse", None)]
            elif isinstance(statement, cst.Try):
                blocks = [statement.body, statement.orelse, statement.finalbody]
                blocks += [handler.body for handler in statement.handlers]
            for block in blocks:
                if isinstance(block, (cst.Else, cst.Finally)):
                    block = block.body
                if isinstance(block, cst.If):  # elif
                    pending.append(block)
                elif isinstance(block, cst.IndentedBlock):
                    pending.extend(block.body)

    def _relevant_aliases(self) -> re.Pattern[str] | None:
        """Local names that module-level imports give to loaders, so that a call spelled
        ``build_extension(...)`` (``from torch.utils.cpp_extension import load as
        build_extension``) still marks its statement as worth walking."""
        names = [local for local, target in self.aliases.items()
                 if target.startswith(_RELEVANT_IMPORT_PREFIXES) and not _RELEVANT_TEXT_RE.search(local)]
        return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None

    def _bind(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Assign):
            names = [t.target.value for t in node.targets if isinstance(t.target, cst.Name)]
        elif isinstance(node, cst.AnnAssign) and isinstance(node.target, cst.Name) and node.value is not None:
            names = [node.target.value]
        else:
            return
        for name in names:
            key = (name, id(node.value))
            if key not in self.bound_values:  # module-level ones are seen twice
                self.bound_values.add(key)
                self.bindings.setdefault(name, []).append(node.value)  # type: ignore[arg-type]

    def defer(self, handler: Callable[[cst.CSTNode], None], node: cst.CSTNode) -> None:
        self.pending.append((self.top, handler, node))

    # -- names ---------------------------------------------------------------------------

    def qualified(self, func: cst.BaseExpression) -> str | None:
        name = dotted_name(func)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in self.aliases:
            return self.aliases[head] + ("." + rest if rest else "")
        if head in _BUILTINS and not rest:
            return "builtins." + head
        return name

    def add_reference(self, candidate: object, reason: str, node: cst.CSTNode, *, also_file_dir: bool) -> bool:
        """Record ``candidate`` (a modelled path) when it names an existing source file."""
        for relative in self._relative_candidates(candidate, also_file_dir):
            if relative in self.folder_files and is_source_file(relative):
                self.references.append(_PathReference(relative, reason, self.line_of(node)))
                return True
        return False

    def _relative_candidates(self, candidate: object, also_file_dir: bool) -> list[str]:
        text = str(candidate)
        results = []
        try:
            results.append(folder_relative(text))
        except ValueError:
            return []
        if also_file_dir and self.file_dir and not text.startswith("/"):
            try:
                results.append(folder_relative(posixpath.join(self.file_dir, text)))
            except ValueError:
                pass
        return results

    # -- static path values --------------------------------------------------------------

    def path_values(self, node: cst.BaseExpression, depth: int = 0) -> list[object]:
        """Possible values (str or PurePosixPath, modelled below the folder root) of a path
        expression; empty when it is not statically known."""
        if depth > _MAX_BINDING_DEPTH:
            return []
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            value = self.literal(node)
            return [value] if isinstance(value, str) else []
        if isinstance(node, cst.Name):
            if node.value == "__file__":
                return [folder_path(self.runtime_file)]
            values: list[object] = []
            for bound in self.bindings.get(node.value, [])[:_MAX_CANDIDATES]:
                values.extend(self.path_values(bound, depth + 1))
            return _unique(values)
        if isinstance(node, cst.Attribute):
            if node.attr.value in ("parent", "name", "stem"):
                return [getattr(PurePosixPath(str(v)), node.attr.value) for v in self.path_values(node.value, depth + 1)]
            return []
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, (cst.Divide, cst.Add)):
                left = self.path_values(node.left, depth + 1)
                right = self.path_values(node.right, depth + 1)
                results: list[object] = []
                for a, b in itertools.islice(itertools.product(left, right), _MAX_CANDIDATES):
                    if isinstance(node.operator, cst.Divide):
                        if isinstance(a, PurePosixPath):
                            results.append(a / str(b))
                    elif isinstance(a, str) and isinstance(b, str):
                        results.append(a + b)
                return results
            return []
        if isinstance(node, cst.Call):
            return self.call_path_values(node, depth)
        return []

    def call_path_values(self, node: cst.Call, depth: int) -> list[object]:
        name = self.qualified(node.func)
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        if name in _PATH_FUNCTIONS:
            arg_values = [self.path_values(a, depth + 1) for a in positional]
            if any(not values for values in arg_values):
                return []
            results: list[object] = []
            for combo in itertools.islice(itertools.product(*arg_values), _MAX_CANDIDATES):
                parts = [str(p) for p in combo]
                function = name.rsplit(".", 1)[-1]
                if name.startswith("pathlib."):
                    results.append(PurePosixPath(*parts) if parts else PurePosixPath("."))
                elif function == "join" and parts:
                    results.append(posixpath.join(*parts))
                elif len(parts) == 1:
                    if function == "dirname":
                        results.append(posixpath.dirname(parts[0]))
                    elif function in ("abspath", "realpath"):
                        results.append(modelled_abspath(parts[0]))
                    elif function == "normpath":
                        results.append(posixpath.normpath(parts[0]))
                    else:  # str, fspath, expanduser
                        results.append(parts[0])
            return results
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in _PATH_METHODS:
            method = node.func.attr.value
            owners = self.path_values(node.func.value, depth + 1)
            arg_values = [self.path_values(a, depth + 1) for a in positional]
            if not owners or any(not values for values in arg_values):
                return []
            results = []
            for owner in owners:
                for combo in itertools.islice(itertools.product(*arg_values), _MAX_CANDIDATES):
                    args = [str(a) for a in combo]
                    try:
                        if method == "replace" and isinstance(owner, str) and len(args) == 2:
                            results.append(owner.replace(args[0], args[1]))
                        elif isinstance(owner, PurePosixPath):
                            if method in ("resolve", "absolute"):
                                results.append(PurePosixPath(modelled_abspath(str(owner))))
                            elif method == "expanduser":
                                results.append(owner)
                            elif method == "joinpath":
                                results.append(owner.joinpath(*args))
                            elif method in ("with_name", "with_suffix") and len(args) == 1:
                                results.append(getattr(owner, method)(args[0]))
                    except ValueError:
                        continue
            return results
        return []

    def sequence_items(self, node: cst.BaseExpression, depth: int = 0) -> list[cst.BaseExpression]:
        """Items of a list/tuple literal, following names bound to one (``sources=KERNELS``)."""
        if isinstance(node, cst.Name) and depth < _MAX_BINDING_DEPTH:
            bound = self.bindings.get(node.value, [])
            if bound and all(isinstance(b, (cst.List, cst.Tuple, cst.Name)) for b in bound):
                return [item for b in bound for item in self.sequence_items(b, depth + 1)]
        if isinstance(node, (cst.List, cst.Tuple)):
            items: list[cst.BaseExpression] = []
            for element in node.elements:
                if isinstance(element, cst.StarredElement):
                    items.extend(self.sequence_items(element.value, depth + 1))
                else:
                    items.append(element.value)
            return items
        return [node]

    def literal(self, node: cst.BaseExpression) -> str | bytes | None:
        try:
            return string_value(node, _MAX_PATH_LITERAL)
        except LiteralError:
            return None

    # -- visitors ------------------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> None:
        line = self.line_of(node)
        for alias in node.names:
            self.imports.append(_Import(dotted_name(alias.name) or "", (), 0, line))
        self._alias(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_name(node.module) if node.module is not None else ""
        names = ("*",) if isinstance(node.names, cst.ImportStar) else tuple(dotted_name(a.name) or "" for a in node.names)
        self.imports.append(_Import(module or "", names, len(node.relative), self.line_of(node)))
        self._alias(node)

    def _alias(self, node: cst.Import | cst.ImportFrom) -> None:
        """Record local name -> qualified name for call resolution."""
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name) or ""
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.aliases[alias.asname.name.value] = full
                else:
                    head = full.split(".")[0]
                    self.aliases.setdefault(head, head)
            return
        module = dotted_name(node.module) if node.module is not None else ""
        if node.relative or not module or isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = f"{module}.{name}"

    def visit_Assign(self, node: cst.Assign) -> None:
        self._bind(node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node)

    def visit_Expr(self, node: cst.Expr) -> bool:
        # docstrings and bare string statements are prose, not file references
        return not isinstance(node.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))

    def visit_Call(self, node: cst.Call) -> None:
        self.defer(self.resolve_call, node)

    def resolve_call(self, node: cst.Call) -> None:
        name = self.qualified(node.func)
        if name is None:
            return
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}

        if name in _IMPORT_FUNCTIONS:
            target = positional[0] if positional else keywords.get("name")
            value = self.literal(target) if target is not None else None
            if isinstance(value, str):
                level = len(value) - len(value.lstrip("."))
                self.imports.append(_Import(value.lstrip("."), (), level, self.line_of(node)))
                self._explain(target)
            else:
                self.problem(node, "dynamic import", "could not be resolved")
            return

        if name in _SPEC_FUNCTIONS or name.endswith(".spec_from_file_location"):
            index = _SPEC_FUNCTIONS.get(name, 1)
            target = positional[index] if len(positional) > index else keywords.get("location", keywords.get("path"))
            self._resolve_file_argument(node, target, "module loaded by importlib", "importlib file load")
            return

        if name in _CPP_EXTENSION_LOADERS or name.endswith("cpp_extension.load"):
            sources = keywords.get("sources")
            if sources is None and len(positional) > 1 and name.endswith(".load"):
                sources = positional[1]
            if sources is None:
                return
            for value in self.sequence_items(sources):
                self._resolve_file_argument(node, value, "native source built by torch.utils.cpp_extension.load",
                                            "cpp_extension source")
            return

        if name in _RUN_FILE_FUNCTIONS and positional:
            target = self._file_read_target(positional[0])
            if target is not None:
                self._resolve_file_argument(node, target, "run by exec" if name != "runpy.run_path" else "run by runpy.run_path",
                                            "exec of a file")
            elif name == "runpy.run_path":
                self._resolve_file_argument(node, positional[0], "run by runpy.run_path", "runpy.run_path file")
            elif not isinstance(positional[0], (cst.SimpleString, cst.ConcatenatedString)):
                # code built at run time may come from anywhere; say so rather than count nothing
                self.problem(node, "exec of code built at run time", "could not be traced to a file")
            return

        if name in ("sys.path.insert", "sys.path.append"):
            target = positional[-1] if positional else None
            for value in self.path_values(target) if target is not None else []:
                try:
                    directory = folder_relative(str(value))
                except ValueError:
                    directory = "" if str(value) in (".", "") else None
                if directory is not None and directory not in self.extra_roots:
                    self.extra_roots.append(directory)
            return

        if name.startswith(_SUBPROCESS_PREFIXES):
            for value in positional:
                elements = value.elements if isinstance(value, (cst.List, cst.Tuple)) else [value]
                for element in elements:
                    expression = element.value if isinstance(element, (cst.Element, cst.StarredElement)) else element
                    for candidate in self.path_values(expression):
                        for word in str(candidate).split():
                            if self.add_reference(word, "source compiled by a subprocess call", node, also_file_dir=True):
                                self._explain(expression)
            return

        if name in _PATH_FUNCTIONS or (isinstance(node.func, cst.Attribute) and node.func.attr.value in _PATH_METHODS):
            for candidate in self.call_path_values(node, 0):
                self.add_reference(candidate, "named by a path expression", node, also_file_dir=False)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Divide, cst.Add)):
            self.defer(self.resolve_path_expression, node)

    def resolve_path_expression(self, node: cst.BinaryOperation) -> None:
        for candidate in self.path_values(node):
            self.add_reference(candidate, "named by a path expression", node, also_file_dir=False)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.defer(self._string_reference, node)

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        self.defer(self._string_reference, node)
        return False

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        self.defer(self.resolve_fstring, node)
        return False

    def resolve_fstring(self, node: cst.FormattedString) -> None:
        # f"{here}/ngram/kernel.cpp": the literal tail after the last placeholder
        tail: list[str] = []
        for part in reversed(node.parts):
            if not isinstance(part, cst.FormattedStringText):
                break
            tail.append(part.value)
        text = "".join(reversed(tail)).lstrip("/")
        if text and _SOURCE_MENTION_RE.search(text) and "\\" not in text:
            self.add_reference(text, "named by an f-string", node, also_file_dir=True)

    def _string_reference(self, node: cst.BaseExpression) -> None:
        if id(node) in self._explained:
            return
        raw = node.value if isinstance(node, cst.SimpleString) else None
        if raw is not None and (len(raw) > _MAX_PATH_LITERAL or not _SOURCE_MENTION_RE.search(raw)):
            return
        value = self.literal(node)
        if isinstance(value, str) and _SOURCE_MENTION_RE.search(value):
            self.add_reference(value, "named by a string literal", node, also_file_dir=True)

    # -- helpers -------------------------------------------------------------------------

    def _explain(self, node: cst.CSTNode | None) -> None:
        if node is not None:
            self._explained.add(id(node))

    def _file_read_target(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The path inside ``open(P).read()``, ``Path(P).read_text()`` or ``compile(open(P).read(), ...)``."""
        if not isinstance(node, cst.Call):
            return None
        name = self.qualified(node.func)
        if name == "builtins.compile":
            positional = [a.value for a in node.args if a.keyword is None]
            return self._file_read_target(positional[0]) if positional else None
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("read", "read_text", "read_bytes"):
            inner = node.func.value
            if node.func.attr.value == "read" and isinstance(inner, cst.Call) and self.qualified(inner.func) in ("builtins.open", "io.open"):
                positional = [a.value for a in inner.args if a.keyword is None]
                return positional[0] if positional else None
            if node.func.attr.value != "read":
                return inner
        return None

    def _resolve_file_argument(self, node: cst.Call, target: cst.BaseExpression | None, reason: str, what: str) -> None:
        if target is None:
            self.problem(node, what, "has no file argument")
            return
        candidates = self.path_values(target)
        if not candidates:
            self.problem(node, what, "could not be resolved")
            return
        found = False
        for candidate in candidates:
            for relative in self._relative_candidates(candidate, also_file_dir=True):
                if relative in self.folder_files:
                    if is_source_file(relative) or reason.startswith(("run by", "module loaded")):
                        self.references.append(_PathReference(relative, reason, self.line_of(node)))
                    found = True
                    break
        if found:
            self._explain(target)
        else:
            shown = ", ".join(sorted({_display_path(c) for c in candidates})[:3])
            self.problem(node, what, f"names {shown}, which is not in the record folder")

    def problem(self, node: cst.CSTNode, what: str, detail: str) -> None:
        line = self.line_of(node)
        message = f"{what} at line {line} of {self.file} {detail}" if line else f"{what} in {self.file} {detail}"
        if message not in self.problems:
            self.problems.append(message)


def _top_level_texts(module: cst.Module, source: str, positions: LineTable) -> list[str]:
    """Source text of each element of ``module.body`` (leading comments included).

    The start lines come from the LineTable of the same module (a scan of the text, no code
    generation); slicing ``source`` by them keeps the statements' texts free of any second
    pass over the tree.
    """
    starts_by_id = positions.top_start_lines()
    starts = [starts_by_id[id(top)] for top in module.body]
    # split on "\n" only: libcst counts lines the same way (str.splitlines would also split
    # on form feeds and Unicode line separators inside literals)
    pieces = source.split("\n")
    texts = ["\n".join(pieces[start - 1:end - 1]) + "\n" for start, end in zip(starts, starts[1:])]
    if starts:
        texts.append("\n".join(pieces[starts[-1] - 1:]))  # the last statement, with the module footer
    return texts


def _display_path(candidate: object) -> str:
    try:
        return folder_relative(str(candidate))
    except ValueError:
        return str(candidate)


def _unique(values: list[object]) -> list[object]:
    seen: list[object] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen[:_MAX_CANDIDATES]

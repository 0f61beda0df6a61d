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

import os
import posixpath
import stat
from pathlib import Path
from typing import Callable

import libcst as cst

from pgolf_audit.cstutil import SourceParseError, parse_module
from pgolf_audit.lines import LineTable
from .hidden_code import DataRunningCall, _RUNS_DATA_HINT_RE, calls_running_data, check_source_shape
from .unwrap_interpreter import _LayerInterpreter, _Limits, _classify_module
from .unwrap_literals import LiteralError, _human_size, folder_path, folder_relative, looks_like_wrapper, modelled_abspath, simple_string_value, string_value
from .unwrap_types import DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_OUTPUT_BYTES, UnwrapError, UnwrappedCode, WrapperLayer

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
    parse: Callable[[str, str], cst.Module] | None = None,
) -> UnwrappedCode:
    """Peel self-extracting layers off ``text`` (the contents of ``entry``) without running it.

    ``read_sibling`` gets folder-relative POSIX paths and returns the file's text (binary
    files decoded with ``surrogateescape``, or as bytes), or None when there is no such file.
    ``entry_bytes`` is the entry's size on disk when the caller knows it (default: the UTF-8
    size of ``text``). ``parse(file, source)`` parses the sources met on the way (default
    ``cstutil.parse_module``; it raises SourceParseError on source that is not Python): a
    caller that caches its parses passes its own, so that the module the result carries is
    the one the caller's other readers get. Raises UnwrapError when a file shaped like a
    wrapper cannot be interpreted, or when a limit is hit.
    """
    parse = parse or _parse_any
    entry = _normalize_name(entry)
    size = entry_bytes if entry_bytes is not None else len(text.encode("utf-8", "surrogateescape"))
    check_source_shape(text, entry, from_file=from_file)
    layers: list[WrapperLayer] = []
    file, runtime_file, current = entry, entry, text
    module: cst.Module | None = None
    if not looks_like_wrapper(text):
        return _with_embedded_payloads(UnwrappedCode(entry, size, entry, text, [], None, entry), read_sibling,
                                       max_output_bytes, max_depth, parse)
    limits = _Limits(read_sibling, max_output_bytes,
                     max_literal_bytes if max_literal_bytes is not None else max_output_bytes, max_output_bytes)
    try:
        while True:
            if layers:
                check_source_shape(current, file, len(layers), from_file=False)
            try:
                module = parse(file, current)
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
                                   read_sibling, max_output_bytes, max_depth, parse)


def _parse_any(file: str, source: str) -> cst.Module:
    return parse_module(source)


def _with_embedded_payloads(code: UnwrappedCode, read_sibling: Callable[[str], str | bytes | None],
                            max_output_bytes: int, max_depth: int,
                            parse: Callable[[str, str], cst.Module]) -> UnwrappedCode:
    """``code`` with every top-level ``exec(<decodable payload>)`` statement replaced by the
    source it runs (a readable script may carry one hidden line), so that the rules read the
    code that really runs. Any other place where the code runs data that is not a literal
    (exec of a variable, eval of input, exec spelled through getattr or ``__builtins__``) is an
    UnwrapError: that code cannot be read without running it, so the audit cannot pass."""
    while _RUNS_DATA_HINT_RE.search(code.source):
        module = code.module
        if module is None:
            try:
                module = parse(code.origin, code.source)
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

"""Counted code bytes of a submission (R-ART-CODE-BYTES).

Counted code is ``train_gpt.py`` plus every local module or source file that it imports,
executes, compiles or loads at train/eval time: helper modules (#1514's ``ngram_tilt.py``),
exec'd siblings (#1412's ``train_gpt_decode.py``) and native sources built at run time
(#1514's ``ngram/fused_expert_kernel.cpp`` through ``torch.utils.cpp_extension.load``).
References are found statically in the unwrapped code, recursively through helpers; nothing
is imported or run. Sizes are the raw on-disk bytes of each file.
"""

from __future__ import annotations

import posixpath
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import libcst as cst

from pgolf_audit.cstutil import SourceParseError, parse_module
from pgolf_audit.unwrap import DEFAULT_MAX_FILE_BYTES, FolderReader, UnwrapError, UnwrappedCode, folder_relative, unwrap, unwrap_file

from .code_references import (
    _INCLUDE_RE, _MENTION_REASONS, KNOWN_LIBRARIES, NATIVE_EXTENSIONS, _Import, _ModuleScanner, _PathReference, is_source_file,
)


@dataclass(frozen=True)
class CountedFile:
    path: str                    # relative to the record folder, POSIX separators
    bytes: int                   # raw on-disk size
    reason: str                  # why it counts: "imported module", "entry script", ...
    referenced_from: str | None  # file holding the reference (None for the entry)
    line: int | None             # line of the reference in that file's unwrapped source


@dataclass
class CodeAccounting:
    entry: str
    files: list[CountedFile]           # entry first
    total_bytes: int                   # sum of raw on-disk bytes of all counted files
    entry_bytes: int
    unwrapped_entry_bytes: int
    uncounted_candidates: list[str]    # other source files in the folder not reached
    problems: list[str] = field(default_factory=list)

    @property
    def helper_bytes(self) -> int:
        """Bytes counted besides the entry script."""
        return self.total_bytes - self.entry_bytes


# ---------------------------------------------------------------------------------------
# Module resolution


def _module_files(name: str, root: str, folder_files: Mapping[str, int]) -> list[tuple[str, str]]:
    """Files that ``import name`` runs when ``root`` is on sys.path: (path, reason) for every
    package ``__init__.py`` on the way and the module itself. Empty when the first component
    is not found under ``root``."""
    parts = [p for p in name.split(".") if p]
    found: list[tuple[str, str]] = []
    for index in range(len(parts)):
        base = posixpath.join(root, *parts[: index + 1]) if root else posixpath.join(*parts[: index + 1])
        package_init = base + "/__init__.py"
        module_file = base + ".py"
        is_package_dir = any(path.startswith(base + "/") for path in folder_files)
        if package_init in folder_files:
            found.append((package_init, "imported package"))
        elif module_file in folder_files:
            found.append((module_file, "imported module"))
            break  # a module file ends the dotted path (attributes follow)
        elif not is_package_dir:
            break  # not a namespace package either
    return found


class _Accountant:
    def __init__(self, unwrapped: UnwrappedCode, folder_files: Mapping[str, int],
                 read_text: Callable[[str], str | None], parse: Callable[[str, str], cst.Module] | None):
        self.unwrapped = unwrapped
        self.folder_files = dict(folder_files)
        self.read_text = read_text
        self.parse = parse or (lambda path, source: parse_module(source))
        self.counted: dict[str, CountedFile] = {}
        self.problems: list[str] = []
        self.queue: deque[str] = deque()

    def count(self, path: str, reason: str, referenced_from: str | None, line: int | None) -> None:
        if path in self.counted:
            return
        size = self.folder_files.get(path)
        if size is None:
            self.problems.append(f"{path} is referenced but missing from the folder listing")
            return
        self.counted[path] = CountedFile(path, size, reason, referenced_from, line)
        self.queue.append(path)

    def run(self) -> CodeAccounting:
        unwrapped = self.unwrapped
        entry = unwrapped.entry
        entry_size = self.folder_files.get(entry, unwrapped.entry_bytes)
        self.counted[entry] = CountedFile(entry, entry_size, "entry script", None, None)
        for layer in unwrapped.layers:
            if layer.sibling is not None and layer.sibling != entry:
                self.count(layer.sibling, f"run by the exec stub in {layer.file}", layer.file, layer.line)
            for imported in layer.imports:
                self.resolve_import(imported.module, imported.names, imported.level, layer.file, [], imported.line,
                                    via=f"imported by the wrapper layer in {layer.file}")
        # the final source is scanned here; files it reaches are scanned from the queue
        scanned = {unwrapped.origin}
        module = unwrapped.module
        if module is None:
            module = self.parse_or_report(unwrapped.origin, unwrapped.source)
        if module is not None:
            self.scan_python(unwrapped.origin, unwrapped.runtime_file, module, unwrapped.source)
        while self.queue:
            path = self.queue.popleft()
            if path in scanned:
                continue
            scanned.add(path)
            if path.lower().endswith((".py", ".triton")):
                self.scan_helper(path)
            elif path.lower().endswith(NATIVE_EXTENSIONS):
                self.scan_native(path)
        files = list(self.counted.values())
        counted_paths = set(self.counted)
        uncounted = sorted(p for p in self.folder_files if is_source_file(p) and p not in counted_paths)
        return CodeAccounting(
            entry=entry,
            files=files,
            total_bytes=sum(f.bytes for f in files),
            entry_bytes=entry_size,
            unwrapped_entry_bytes=len(unwrapped.source.encode("utf-8", "surrogateescape")),
            uncounted_candidates=uncounted,
            problems=self.problems,
        )

    def parse_or_report(self, path: str, source: str) -> cst.Module | None:
        try:
            return self.parse(path, source)
        except SourceParseError as exc:
            self.problems.append(f"{path} could not be parsed ({exc}); its references were not followed")
        except Exception as exc:  # a caller-supplied parser may raise its own errors
            self.problems.append(f"{path} could not be parsed ({type(exc).__name__}: {exc}); its references were not followed")
        return None

    def parse_for_unwrap(self, path: str, source: str) -> cst.Module:
        """``self.parse`` as the unwrapper expects it: any error of a caller-supplied parser is
        a SourceParseError (reported by ``parse_or_report`` when the scan parses the source)."""
        try:
            return self.parse(path, source)
        except SourceParseError:
            raise
        except Exception as exc:
            raise SourceParseError(f"not parseable: {type(exc).__name__}: {exc}") from None

    def scan_helper(self, path: str) -> None:
        text = self.read_text(path)
        if text is None:
            self.problems.append(f"{path} could not be read; its references were not followed")
            return
        try:
            # the helper's module is parsed once, by the caller's parser, whether the unwrapper
            # or the scan below needs it first: the rule engine then gets the same object
            unwrapped = unwrap(path, text, self.read_text, parse=self.parse_for_unwrap)
        except UnwrapError as exc:
            self.problems.append(f"{path} could not be unwrapped ({exc}); its references were not followed")
            return
        for layer in unwrapped.layers:
            if layer.sibling is not None:
                self.count(layer.sibling, f"run by the exec stub in {layer.file}", layer.file, layer.line)
        module = unwrapped.module or self.parse_or_report(unwrapped.origin, unwrapped.source)
        if module is not None:
            self.scan_python(unwrapped.origin, unwrapped.runtime_file, module, unwrapped.source)

    def scan_native(self, path: str) -> None:
        """Quoted ``#include "x.h"`` of a native source, relative to its directory, then the root."""
        text = self.read_text(path)
        if text is None:
            self.problems.append(f"{path} could not be read; its includes were not followed")
            return
        directory = posixpath.dirname(path)
        for match in _INCLUDE_RE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for base in (directory, ""):
                try:
                    candidate = folder_relative(posixpath.join(base, match.group(1)) if base else match.group(1))
                except ValueError:
                    continue
                if candidate in self.folder_files:
                    self.count(candidate, f"#include'd by {path}", path, line)
                    break

    def scan_python(self, path: str, runtime_file: str, module: cst.Module, source: str) -> None:
        scanner = _ModuleScanner(module, source, path, runtime_file, self.folder_files)
        scanner.scan()
        self.problems.extend(p for p in scanner.problems if p not in self.problems)
        # one reference per file: a specific one (import, cpp_extension, exec...) over a mere
        # mention of the path; then count in source order, so the listing reads like the file
        chosen: dict[str, _PathReference] = {}
        for ref in scanner.references:
            current = chosen.get(ref.path)
            if current is None or (current.reason in _MENTION_REASONS and ref.reason not in _MENTION_REASONS):
                chosen[ref.path] = ref
        found: list[tuple[int, int, object]] = []
        found.extend((ref.line or 0, index, ref) for index, ref in enumerate(chosen.values()))
        found.extend((imp.line or 0, len(found) + index, imp) for index, imp in enumerate(scanner.imports))
        for _, _, item in sorted(found, key=lambda entry: (entry[0], entry[1])):
            if isinstance(item, _PathReference):
                if item.path not in (path, runtime_file):
                    self.count(item.path, item.reason, path, item.line)
            else:
                assert isinstance(item, _Import)
                self.resolve_import(item.module, item.names, item.level, path, scanner.extra_roots, item.line)

    def resolve_import(self, module: str, names: tuple[str, ...], level: int, importer: str,
                       extra_roots: list[str], line: int | None, via: str | None = None) -> None:
        importer_dir = posixpath.dirname(importer)
        if level:
            base = importer_dir
            for _ in range(level - 1):
                if not base:
                    self.problems.append(f"relative import at line {line} of {importer} leaves the record folder")
                    return
                base = posixpath.dirname(base)
            found = _module_files(module, base, self.folder_files) if module else []
            if not module and base and base + "/__init__.py" in self.folder_files:
                found.append((base + "/__init__.py", "imported package"))
            prefix = posixpath.join(base, *module.split(".")) if module else base
            for name in names:
                if name != "*":
                    found.extend(_module_files(name, prefix, self.folder_files))
            if not found:
                dots = "." * level
                self.problems.append(f"relative import {dots}{module} at line {line} of {importer} could not be resolved")
            for path, reason in found:
                self.count(path, via or reason, importer, line)
            return
        roots = [""] + ([importer_dir] if importer_dir else []) + [r for r in extra_roots if r]
        for root in roots:
            found = _module_files(module, root, self.folder_files)
            if not found:
                continue
            package = posixpath.join(root, *module.split(".")) if root else posixpath.join(*module.split("."))
            for name in names:
                if name != "*" and (package + "/__init__.py" in self.folder_files or any(p.startswith(package + "/") for p in self.folder_files)):
                    found.extend(_module_files(name, package, self.folder_files))
            top = module.split(".")[0]
            for path, reason in found:
                if top in KNOWN_LIBRARIES and (via is None):
                    reason = f"{reason}, shadowing the library {top}"
                self.count(path, via or reason, importer, line)
            return


def account_code(
    unwrapped: UnwrappedCode,
    folder_files: Mapping[str, int],
    read_text: Callable[[str], str | None],
    parse: Callable[[str, str], cst.Module] | None = None,
) -> CodeAccounting:
    """Count the entry script and every local file it reaches (see the module docstring).

    ``folder_files`` maps folder-relative POSIX paths to on-disk sizes; ``read_text`` returns
    a folder file's text or None; ``parse(path, source)`` parses Python (libcst) and defaults
    to ``cstutil.parse_module``. Helpers are unwrapped and scanned in turn, each once.
    """
    return _Accountant(unwrapped, folder_files, read_text, parse).run()


def account_folder(entry_path: Path, *, max_file_bytes: int | None = None) -> tuple[UnwrappedCode, CodeAccounting]:
    """Unwrap ``entry_path`` and count code over its folder (reads confined to the folder)."""
    entry_path = Path(entry_path)
    limit = max_file_bytes or DEFAULT_MAX_FILE_BYTES
    reader = FolderReader(entry_path.parent, max_file_bytes=limit)
    unwrapped = unwrap_file(entry_path, max_file_bytes=limit)

    def read_text(relative: str) -> str | None:
        try:
            return reader.read_text(relative)
        except (OSError, ValueError):
            return None

    return unwrapped, account_code(unwrapped, reader.list_files(), read_text)

"""Bundle the reference modules into one self-contained ``train_gpt.py``.

The challenge counts all code in ``train_gpt.py`` and runs it from inside the record folder,
so a record may not import this package. The record script is generated from the package's
own modules (one source of truth): each module's top-level statements are copied in
dependency order, with ``from __future__`` and package-relative imports removed (the names
they imported are defined earlier in the same file), and the trainer's
``if __name__ == "__main__": main()`` at the end.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

PACKAGE_DIR = Path(__file__).resolve().parent
TRAIN_SCRIPT_MODULES = ("metric", "shards", "byte_lut", "model", "evaluator", "quantize", "trainer")
HEADER = '''"""Parameter Golf reference trainer (train_gpt.py), self-contained.

Generated from pgolf-audit's reference_impl modules ({modules}); regenerate rather than edit.
Run from this folder:  torchrun --standalone --nproc_per_node=N train_gpt.py   (or python train_gpt.py)
"""

from __future__ import annotations
'''


class BundleError(RuntimeError):
    pass


def _is_future_import(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.ImportFrom) and isinstance(stmt.body[0].module, cst.Name)
            and stmt.body[0].module.value == "__future__")


def _relative_import_names(stmt: cst.CSTNode) -> list[str] | None:
    """Names imported by a package-relative import statement, or None for any other statement."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.ImportFrom) and stmt.body[0].relative):
        return None
    node = stmt.body[0]
    if isinstance(node.names, cst.ImportStar):
        raise BundleError("star imports cannot be bundled")
    names = []
    for alias in node.names:
        if alias.asname is not None:
            raise BundleError(f"aliased relative import of {cst.Module([]).code_for_node(alias.name)} cannot be bundled")
        names.append(cst.Module([]).code_for_node(alias.name))
    return names


def _defined_names(module: cst.Module) -> set[str]:
    names = set()
    for stmt in module.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.add(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, cst.AnnAssign):
                    targets = [small.target]
                names.update(t.value for t in targets if isinstance(t, cst.Name))
    return names


def bundle_source(modules: tuple[str, ...] = TRAIN_SCRIPT_MODULES, package_dir: Path = PACKAGE_DIR) -> str:
    """The bundled script's source text."""
    parts = [HEADER.format(modules=", ".join(f"{m}.py" for m in modules))]
    defined: set[str] = set()
    for name in modules:
        source = (package_dir / f"{name}.py").read_text(encoding="utf-8")
        module = cst.parse_module(source)
        kept = []
        for stmt in module.body:
            if _is_future_import(stmt):
                continue
            imported = _relative_import_names(stmt)
            if imported is not None:
                missing = [n for n in imported if n not in defined]
                if missing:
                    raise BundleError(f"{name}.py imports {', '.join(missing)} from a module bundled later or not at all")
                continue
            kept.append(module.code_for_node(stmt))
        parts.append(f"\n# {'-' * 30} {name}.py {'-' * 30}\n")
        parts.append("".join(kept).rstrip() + "\n")
        defined |= _defined_names(module)
    return "\n".join(parts)


def write_train_script(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bundle_source(), encoding="utf-8")
    return path

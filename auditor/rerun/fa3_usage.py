"""How a record's code uses FlashAttention 3 (read statically, never run).

The shim must return what the script expects: FA3 since 2025 returns ``out`` unless
``return_attn_probs=True``; the 2024 beta always returned ``(out, softmax_lse)``, and scripts
written for it index the result (``flash_attn_func(...)[0]``) or unpack it
(``out, lse = flash_attn_func(...)``). Those two shapes select the tuple style.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from pgolf_audit.cstutil import dotted_name

FA3_MODULE = "flash_attn_interface"
FA3_FUNCTIONS = ("flash_attn_func", "flash_attn_varlen_func")


@dataclass
class Fa3Usage:
    imports: bool = False
    tuple_style: bool = False
    evidence: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"imports_flash_attn_interface": self.imports, "tuple_style": self.tuple_style,
                "evidence": self.evidence}


class _Visitor(cst.CSTVisitor):
    def __init__(self, module: cst.Module):
        self.module = module
        self.usage = Fa3Usage()
        self.function_names: set[str] = set()     # local names bound to FA3 functions
        self.module_names: set[str] = set()       # local names bound to the module

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            if dotted_name(alias.name) == FA3_MODULE:
                self.usage.imports = True
                self.module_names.add(alias.asname.name.value if alias.asname else FA3_MODULE)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or dotted_name(node.module) != FA3_MODULE:
            return
        self.usage.imports = True
        if isinstance(node.names, cst.ImportStar):
            self.function_names.update(FA3_FUNCTIONS)
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name in FA3_FUNCTIONS:
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
                self.function_names.add(local)

    def _is_fa3_call(self, node: cst.BaseExpression) -> bool:
        if not isinstance(node, cst.Call):
            return False
        name = dotted_name(node.func)
        if name is None:
            return False
        if name in self.function_names:
            return True
        head, _, tail = name.rpartition(".")
        return head in self.module_names and tail in FA3_FUNCTIONS

    def _found(self, node: cst.CSTNode) -> None:
        if not self.usage.tuple_style:
            self.usage.tuple_style = True
            self.usage.evidence = self.module.code_for_node(node).strip().splitlines()[0][:160]

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self._is_fa3_call(node.value) and len(node.slice) == 1:
            index = node.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer) and index.value.value in ("0", "1"):
                self._found(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        if self._is_fa3_call(node.value) and any(isinstance(t.target, (cst.Tuple, cst.List)) for t in node.targets):
            self._found(node)


def fa3_usage(module: cst.Module | None) -> Fa3Usage:
    if module is None:
        return Fa3Usage()
    visitor = _Visitor(module)
    module.visit(visitor)
    return visitor.usage
